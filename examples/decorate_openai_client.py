"""Decorate OpenAI SDK calls with ``@monitor`` and read the models' health afterwards.

    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=sk-... python examples/decorate_openai_client.py

``OPENAI_BASE_URL`` points at any OpenAI-compatible endpoint (OpenAI itself, a gateway, a self-hosted
server, or ``otel-model-health demo``'s simulated provider). ``MODEL_HEALTH_GATEWAY`` names the gateway
for the health key (default ``direct``). Spans go to the console here; in an app, ``configure()`` sets up
OTLP export instead.
"""

from __future__ import annotations

import json
import os
import sys

import openai
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.instrument.decorators import monitor, probe


def main() -> int:
    tracer_provider = TracerProvider()
    if os.environ.get("EXAMPLE_PRINT_SPANS") == "1":
        tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    registry = HealthRegistry()
    gateway = os.environ.get("MODEL_HEALTH_GATEWAY", "direct")

    client = openai.OpenAI(
        base_url=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
        api_key=os.environ.get("OPENAI_API_KEY", "sk-missing"),
        max_retries=1,
    )

    # 1. Wrap the SDK method itself: the model is read from each call's `model=` argument, the
    #    provider from the SDK package (openai).
    create = monitor(registry=registry, gateway=gateway)(client.chat.completions.create)

    # 2. Or decorate your own function; `model` is again one of its arguments (with a default).
    @monitor(provider="openai", gateway=gateway, registry=registry)
    def summarize(text: str, model: str = "gpt-4o-mini") -> str:
        completion = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": f"Summarize: {text}"}]
        )
        return completion.choices[0].message.content or ""

    # 3. A health check: same telemetry, `model_health.operation=health_check`.
    @probe(provider="openai", gateway=gateway, model="gpt-4o-mini", registry=registry)
    def ping() -> None:
        client.chat.completions.create(
            model="gpt-4o-mini", max_tokens=1, messages=[{"role": "user", "content": "ping"}]
        )

    answer = create(model="gpt-4o", messages=[{"role": "user", "content": "Say hello"}])
    print("answer:", answer.choices[0].message.content)
    print("summary:", summarize("OpenTelemetry is a set of APIs for traces, metrics and logs."))

    # Streams: the span ends when the stream is exhausted, closed or dropped.
    stream = create(model="gpt-4o", messages=[{"role": "user", "content": "Count to 3"}], stream=True)
    with stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    print("streamed:", text)

    ping()

    tracer_provider.shutdown()
    print(json.dumps(registry.summary(), indent=2))
    return 0 if registry.summary()["status"] == "healthy" else 1


if __name__ == "__main__":
    sys.exit(main())
