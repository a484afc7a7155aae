"""A gateway's tenants cannot trip shared breakers: made-up model names and a bad key, mixed with good
traffic, through the real openai SDK and our transport (docs/outcomes.md, "the caller's mistakes").

The upstream is an in-memory openrouter.ai: real models answer, unknown ones 404, a bad key 401."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from bugsink_server import CapturingTransport, capturing_sentry
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from otel_model_health import HealthRegistry, ModelHealthTransport
from otel_model_health.health.metrics import register_health_metrics
from otel_model_health.sentry import SentryBridge

pytestmark = pytest.mark.integration  # the simulated provider on 127.0.0.1

REAL_MODELS = ("openai/gpt-4o", "anthropic/claude-sonnet-4")
GOOD_KEY = "sk-or-good-tenant-0000000000000000"
BAD_KEY = "sk-or-revoked-tenant-111111111111"


def upstream(request: httpx2.Request) -> httpx2.Response:
    model = json.loads(request.content)["model"]
    if request.headers["authorization"] != f"Bearer {GOOD_KEY}":
        return httpx2.Response(401, json={"error": {"code": 401, "message": "No auth credentials found"}})
    if model not in REAL_MODELS:
        return httpx2.Response(
            404, json={"error": {"code": 404, "message": f"{model} is not a valid model ID"}}
        )
    return httpx2.Response(
        200,
        json={
            "id": "gen-1",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        },
    )


@pytest.fixture
def sentry() -> Iterator[CapturingTransport]:
    with capturing_sentry() as captured:
        yield captured


def test_made_up_models_and_a_bad_key_are_not_the_models_health(sentry: CapturingTransport) -> None:
    registry = HealthRegistry()
    bridge = SentryBridge().attach(registry)
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    register_health_metrics(registry, meter_provider.get_meter("test"))
    transport = ModelHealthTransport(
        httpx2.MockTransport(upstream), registry=registry, tracer_provider=TracerProvider()
    )

    def client(key: str) -> openai.OpenAI:
        return openai.OpenAI(
            base_url="https://openrouter.ai/api/v1",
            api_key=key,
            max_retries=0,
            http_client=httpx2.Client(transport=transport),
        )

    good, bad = client(GOOD_KEY), client(BAD_KEY)
    messages: Any = [{"role": "user", "content": "hi"}]
    errors = {"not_found": 0, "auth": 0}
    for _ in range(5):
        for i in range(50):  # 50 user-chosen model names, 5 calls each
            for model in REAL_MODELS:
                good.chat.completions.create(model=model, messages=messages)
            try:
                good.chat.completions.create(model=f"openai/gpt-imaginary-{i}", messages=messages)
            except openai.NotFoundError:
                errors["not_found"] += 1
        for model in REAL_MODELS:  # the tenant with a revoked key, 10 calls a round
            for _ in range(5):
                with pytest.raises(openai.AuthenticationError):
                    bad.chat.completions.create(model=model, messages=messages)
                errors["auth"] += 1
    assert errors == {"not_found": 250, "auth": 50}

    assert bridge.flush(5.0)
    bridge.close()
    assert sentry.events == []  # no incident of any model

    summary = registry.summary()
    assert summary["status"] == "healthy"
    assert summary["models"]["total"] == 2 and summary["models"]["healthy"] == 2
    assert sorted(k.model for k in registry.model_keys()) == sorted(REAL_MODELS)
    for model in REAL_MODELS:
        provider = model.split("/")[0]
        state = registry.get(provider=provider, model=model, gateway="openrouter")
        assert state is not None
        assert state.breaker_state.value == "closed" and state.failures_in_window == 0
        # the bad key's calls are counted on the model, as their own outcome
        assert dict(state.outcome_totals) == {
            ("inference", "success"): 250,
            ("inference", "auth_error"): 25,
        }

    # Visible in metrics: the made-up names folded under `_OTHER` per provider and gateway.
    outcomes: dict[tuple[str, str], int] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "model_health.outcomes":
                    for point in metric.data.data_points:
                        attrs = point.attributes or {}
                        name = (str(attrs["gen_ai.request.model"]), str(attrs["model_health.outcome"]))
                        outcomes[name] = outcomes.get(name, 0) + int(point.value)
    assert outcomes[("_OTHER", "unknown_model")] == 250
    assert outcomes[("openai/gpt-4o", "auth_error")] == 25
    assert not any(model.startswith("openai/gpt-imaginary") for model, _ in outcomes)
