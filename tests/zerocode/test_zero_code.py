"""Zero-code: ``opentelemetry-instrument python app.py`` (with opentelemetry-distro) gives model health
for an app that imports only the LLM SDKs. Real subprocesses, real SDKs, the simulated provider, OTLP to
an oteltap receiver. opentelemetry-instrumentation-httpx (httpx and httpx2) and the official OpenAI GenAI
instrumentation are installed, so ``opentelemetry-instrument`` loads them beside ours in the first test:
that run also proves the nesting and the single count."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from configure.otlp_receivers import OtelTap, attributes, data_points, free_port
from instrumented import instrumented_env, popen

from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration

APP = str(Path(__file__).with_name("app_sdks.py"))
# model → (gen_ai.provider.name, calls the app makes)
EXPECTED = {
    "gpt-4o-mini": ("openai", 3),
    "claude-test": ("anthropic", 1),
    "gemini-2.5-flash": ("gcp.gemini", 1),
    "mistral-small-latest": ("mistral_ai", 1),
    "llama-3.3-70b-versatile": ("groq", 1),
}


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_unmodified_app_under_opentelemetry_instrument(oteltap: OtelTap, tmp_path: Path) -> None:
    port = free_port()
    with SimulatedProvider() as provider:
        provider.script("flaky-model", Fault.status(503))
        env = instrumented_env(
            tmp_path,
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": oteltap.endpoint,
                "SIM_BASE_URL": provider.base_url,
                "MODEL_HEALTH_HTTP_PORT": str(port),
                "MODEL_HEALTH_BREAKER": "open_wait_s=120,minimum_calls=5",
            },
        )
        process = popen([APP], env)
        try:
            assert process.stdout is not None
            lines = []
            for line in process.stdout:
                lines.append(line)
                if line.strip() == "READY":
                    break
            else:
                raise AssertionError(f"app ended early: {''.join(lines)}\n{process.stderr.read()}")  # type: ignore[union-attr]
            models = {m["model"]: m for m in _get_json(f"http://127.0.0.1:{port}/health/models")["models"]}
            summary = _get_json(f"http://127.0.0.1:{port}/health")
        finally:
            _out, err = process.communicate("\n", timeout=60)
        assert process.returncode == 0, err
        # The outage opened that model's breaker, seen through the /health port.
        assert models["flaky-model"]["breaker_state"] == "open", models["flaky-model"]
        assert models["flaky-model"]["failures_in_window"] == 6
        assert summary["status"] != "healthy" or summary  # the document is served whole
        # Each call counted once, with the official OpenAI instrumentation's span around ours.
        for model, (provider_name, calls) in EXPECTED.items():
            assert models[model]["provider"] == provider_name, models[model]
            assert models[model]["calls_in_window"] == calls, (model, models[model])
            assert models[model]["last_outcome"] == "success"
        assert not any(r.path == "/v1/models" and r.method == "POST" for r in provider.requests)

    def ours_per_model(tap: OtelTap) -> dict[str, list[Any]] | None:
        found: dict[str, list[Any]] = {}
        for span in tap.spans:
            attrs = attributes(span)
            if "model_health.outcome" in attrs:
                found.setdefault(attrs["gen_ai.request.model"], []).append(span)
        done = all(len(found.get(m, ())) == calls for m, (_, calls) in EXPECTED.items())
        return found if done and len(found.get("flaky-model", ())) == 6 else None

    ours = oteltap.wait_for(ours_per_model, describe="our GenAI span for each call")
    by_id = {span.span_id: span for span in oteltap.spans}
    children: dict[bytes, list[Any]] = {}
    for span in oteltap.spans:
        children.setdefault(span.parent_span_id, []).append(span)
    for model, (provider_name, _) in EXPECTED.items():
        for span in ours[model]:
            attrs = attributes(span)
            assert attrs["gen_ai.provider.name"] == provider_name, (model, attrs)
            assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0, attrs
            assert attrs["model_health.outcome"] == "success"
            assert "gen_ai.input.messages" not in attrs  # content capture is off by default
            # opentelemetry-instrumentation-httpx's HTTP span nests under ours: one per attempt.
            http = [c for c in children.get(span.span_id, []) if "model_health.outcome" not in attributes(c)]
            assert len(http) == 1 and http[0].trace_id == span.trace_id, (model, [c.name for c in http])
    # The official OpenAI instrumentation's span is the parent of ours for the openai chat calls.
    parents = [by_id.get(span.parent_span_id) for span in ours["gpt-4o-mini"]]
    assert all(p is not None and "model_health.outcome" not in attributes(p) for p in parents), parents
    assert {attributes(p).get("gen_ai.operation.name") for p in parents} == {"chat"}  # type: ignore[arg-type]
    # It names the provider by gen_ai.provider.name or (v1.30) gen_ai.system; the processor reads both.
    named = {attributes(p).get("gen_ai.provider.name") or attributes(p).get("gen_ai.system") for p in parents}  # type: ignore[union-attr]
    assert named == {"openai"}
    # GenAI and model_health.* metrics for every provider.

    def metrics_seen(tap: OtelTap) -> bool:
        providers = {
            attributes(p).get("gen_ai.provider.name")
            for m in tap.metrics
            if m.name == "gen_ai.client.token.usage"
            for p in data_points(m)
            if "model_health.gateway" in attributes(p)
        }
        opened = any(
            attributes(p).get("gen_ai.request.model") == "flaky-model" and p.as_int == 1
            for m in tap.metrics
            if m.name == "model_health.breaker.state"
            for p in data_points(m)
            if attributes(p).get("model_health.breaker.state") == "open"
        )
        outcomes = {
            attributes(p).get("gen_ai.request.model")
            for m in tap.metrics
            if m.name == "model_health.outcomes"
            for p in data_points(m)
        }
        return providers >= {p for p, _ in EXPECTED.values()} and opened and outcomes >= set(EXPECTED)

    oteltap.wait_for(metrics_seen, describe="GenAI and model_health metrics of every provider")
