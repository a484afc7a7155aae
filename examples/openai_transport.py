"""Measure every OpenAI call of an app with the model-health transport.

Run against the real API (``OPENAI_API_KEY``) or any OpenAI-compatible server:

    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=sk-... python examples/openai_transport.py

``instrument_client`` wraps the transports of the SDK's default httpx2 client in place, so the client's
proxies (``HTTPS_PROXY``), pool limits and timeouts stay as the SDK set them. Each HTTP attempt becomes one
GenAI span and one outcome in the health registry (an SDK retry after a 503 is one failure, one success).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import openai
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.instrument.transport import instrument_client


class PrintExporter(SpanExporter):
    """One line per span; a real app exports OTLP instead (see docs/httpx-transport.md)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            attrs = span.attributes or {}
            print(
                f"span: {span.name} outcome={attrs.get('model_health.outcome')} "
                f"status={attrs.get('http.response.status_code')} "
                f"tokens={attrs.get('gen_ai.usage.input_tokens')}/{attrs.get('gen_ai.usage.output_tokens')}"
            )
        return SpanExportResult.SUCCESS


def main() -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(PrintExporter()))
    registry = HealthRegistry()
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")

    http_client = instrument_client(
        openai.DefaultHttpxClient(), registry=registry, tracer_provider=tracer_provider
    )
    client = openai.OpenAI(http_client=http_client)  # base URL and key from OPENAI_BASE_URL / OPENAI_API_KEY

    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello in five words."}]
    )
    print("answer:", completion.choices[0].message.content)

    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Count to five."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    print("streamed:", text)

    for state in registry.snapshot():
        print(f"health: {state.key} status={state.status} success_rate={state.success_rate}")
    client.close()
    tracer_provider.shutdown()


if __name__ == "__main__":
    main()
