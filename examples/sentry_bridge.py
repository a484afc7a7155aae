"""Report model-health incidents to Sentry.

    python examples/sentry_bridge.py                       # no DSN: prints the events instead of sending
    SENTRY_DSN=https://key@sentry.example/1 python examples/sentry_bridge.py

A model fails five times in a row: the bridge captures its first failure (a warning, raised to error
because the model is listed as critical) and the breaker opening (error, raised to fatal), each linked
to the trace of the call that caused it, and leaves a ``model_health.incident`` span in that trace.
"""

from __future__ import annotations

import os
from typing import Any

import sentry_sdk
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.sentry import SentryBridge, disabled_genai_integrations


class PrintingTransport(Transport):
    """Stands in for Sentry when no DSN is given: prints each event's essentials."""

    def capture_envelope(self, envelope: Envelope) -> None:
        event: dict[str, Any] | None = envelope.get_event()
        if event is None:
            return
        print(f"[{event['level']}] {event['message']}")
        print(f"    fingerprint: {event['fingerprint']}")
        print(f"    tags: {event['tags']}")
        print(f"    trace: {event['contexts']['trace']['trace_id']}")
        print(f"    trace_url: {event['contexts']['model_health']['trace_url']}")


def main() -> None:
    dsn = os.environ.get("SENTRY_DSN")
    # The app initialises Sentry itself here, so it disables sentry-sdk's own OpenAI/Anthropic
    # integrations: they would send an event for every handled API error.
    sentry_sdk.init(
        dsn=dsn or "http://public@127.0.0.1:1/1",
        transport=None if dsn else PrintingTransport(),
        disabled_integrations=disabled_genai_integrations(),
    )

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = tracer_provider.get_tracer("example")

    registry = HealthRegistry()
    bridge = SentryBridge(
        critical_models=["openai/gpt-4o"],
        trace_url_template="http://localhost:16686/trace/{trace_id}",
        tracer_provider=tracer_provider,
    ).attach(registry)

    key = ModelKey(provider="openai", model="gpt-4o", gateway="openrouter")
    for _ in range(5):
        with tracer.start_as_current_span("chat gpt-4o") as span:
            registry.record(
                key,
                Outcome.FAILURE,
                error_type="503",
                status_code=503,
                error_message="upstream overloaded",
                latency_s=0.8,
                span_context=span.get_span_context(),
            )

    bridge.flush(timeout=5.0)
    bridge.close()
    for span in spans.get_finished_spans():
        if span.name == "model_health.incident":
            attributes = dict(span.attributes or {})
            print(f"incident span in trace {span.context.trace_id:032x}: {attributes}")
    print(f"captured={bridge.captured} dropped={bridge.dropped}")
    sentry_sdk.flush(timeout=5.0)


if __name__ == "__main__":
    main()
