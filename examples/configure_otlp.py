"""GenAI spans and metrics over OTLP with ``configure()`` alone.

``configure()`` reads the standard OpenTelemetry variables, so pointing this script at a collector is a
matter of environment:

    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_SERVICE_NAME=chat-api \
        python examples/configure_otlp.py

(``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` with port 4317 for gRPC.) Without an endpoint it still runs: spans
and metrics are created but exported nowhere, and model health works all the same.

The script talks to the project's simulated provider on 127.0.0.1, so it needs no API key: one model
answers normally, another fails with 503 until its breaker opens. Two ways to instrument are shown: the
transport (any httpx/httpx2-based SDK; here a bare httpx2 client) and the ``@monitor`` decorator.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2

import otel_model_health as omh
from otel_model_health.testing import Fault, SimulatedProvider


def main() -> None:
    handle = omh.configure(metric_export_interval_s=5)
    try:
        with SimulatedProvider() as provider:
            provider.script("flaky-model", Fault.status(503))

            # 1. The transport: every chat completion through this client is measured.
            # (provider/gateway given explicitly: a loopback host would otherwise be "self_hosted")
            client = omh.instrument_client(
                httpx2.Client(base_url=provider.openai_base_url), provider="openai", gateway="simulated"
            )
            with client:
                for model in ("gpt-4o-mini", "flaky-model"):
                    for _ in range(5):
                        response = client.post(
                            "/chat/completions",
                            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                            headers={"Authorization": "Bearer sk-example"},
                        )
                        print(model, response.status_code)

            # 2. The decorator: any function making one model call, whatever client it uses.
            @omh.monitor(provider="openai", gateway="simulated")
            def ask(*, model: str, prompt: str) -> dict[str, Any]:
                body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
                response = httpx2.post(f"{provider.openai_base_url}/chat/completions", json=body)
                response.raise_for_status()
                result: dict[str, Any] = response.json()
                return result

            print("decorated:", ask(model="gpt-4o", prompt="hello")["model"])

        # Health is live, whatever happens to export.
        print(json.dumps(handle.registry.summary(), indent=2, default=str))
        flaky = handle.registry.get(provider="openai", model="flaky-model", gateway="simulated")
        if flaky is not None:
            print("flaky-model:", flaky.status, flaky.breaker_state)
    finally:
        # Flushes spans and metrics (and Sentry, when enabled) before the process exits.
        handle.shutdown()


if __name__ == "__main__":
    main()
