"""Measure every Anthropic call with the model-health transport, nested under the SDK's own span.

    ANTHROPIC_API_KEY=sk-ant-... python examples/anthropic_transport.py
    ANTHROPIC_BASE_URL=http://127.0.0.1:8000 ANTHROPIC_API_KEY=test python examples/anthropic_transport.py

The anthropic SDK (2.x) emits its own ``anthropic.messages.create`` span around all of its retries when
it has a tracer provider; the transport's spans (one per HTTP attempt) become its children, and only the
attempts are counted as outcomes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import anthropic
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.instrument.transport import instrument_client


class PrintExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            attrs = span.attributes or {}
            parent = f"{span.parent.span_id:016x}" if span.parent else "-"
            scope = span.instrumentation_scope
            print(
                f"span: {span.name} scope={scope.name if scope else None} "
                f"id={span.context.span_id:016x} parent={parent} outcome={attrs.get('model_health.outcome')}"
            )
        return SpanExportResult.SUCCESS


def main() -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(PrintExporter()))
    registry = HealthRegistry()
    model = os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-4-6")

    http_client = instrument_client(
        anthropic.DefaultHttpxClient(), registry=registry, tracer_provider=tracer_provider
    )
    client = anthropic.Anthropic(  # base URL and key from ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY
        http_client=http_client,
        open_telemetry={"tracer_provider": tracer_provider},  # the SDK's own span, same provider
    )

    message = client.messages.create(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "Say hello in five words."}]
    )
    print("answer:", "".join(block.text for block in message.content if block.type == "text"))

    with client.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "Count to five."}]
    ) as stream:
        print("streamed:", "".join(stream.text_stream))

    for state in registry.snapshot():
        print(f"health: {state.key} status={state.status} success_rate={state.success_rate}")
    client.close()
    tracer_provider.shutdown()


if __name__ == "__main__":
    main()
