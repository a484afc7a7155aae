"""Observable health metrics read from the registry, collected with an InMemoryMetricReader."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_model_health import _internal
from otel_model_health.health.metrics import register_health_metrics
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import BreakerConfig
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome

GPT = ModelKey(provider="openai", model="gpt-4o")
CLAUDE = ModelKey(provider="anthropic", model="claude", gateway="portkey")


def key_attrs(k: ModelKey) -> dict[str, str]:
    return {
        "gen_ai.provider.name": k.provider,
        "gen_ai.request.model": k.model,
        "model_health.gateway": k.gateway,
    }


class Env:
    def __init__(self) -> None:
        self.registry = HealthRegistry(config=BreakerConfig(jitter=0.0), max_keys=2)
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        self.handle = register_health_metrics(self.registry, self.provider.get_meter("test"))

    def collect(self) -> dict[str, list[tuple[dict[str, Any], float]]]:
        data = self.reader.get_metrics_data()
        out: dict[str, list[tuple[dict[str, Any], float]]] = {}
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    points = out.setdefault(metric.name, [])
                    for point in metric.data.data_points:
                        points.append((dict(point.attributes or {}), point.value))  # type: ignore[union-attr]
        return out


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.provider.shutdown()


def value(points: list[tuple[dict[str, Any], float]], **attrs: Any) -> float | None:
    for a, v in points:
        if a == attrs:
            return v
    return None


def test_every_instrument(env: Env) -> None:
    for _ in range(3):
        env.registry.record(GPT, Outcome.SUCCESS)
    env.registry.record(GPT, Outcome.FAILURE)
    env.registry.record(GPT, Outcome.NEUTRAL, operation="health_check")
    for _ in range(5):
        env.registry.record(CLAUDE, Outcome.FAILURE)
    m = env.collect()

    outcomes = m["model_health.outcomes"]
    g, c = key_attrs(GPT), key_attrs(CLAUDE)
    op, oc = "model_health.operation", "model_health.outcome"
    assert value(outcomes, **g, **{op: "inference", oc: "success"}) == 3
    assert value(outcomes, **g, **{op: "inference", oc: "failure"}) == 1
    assert value(outcomes, **g, **{op: "health_check", oc: "neutral"}) == 1
    assert value(outcomes, **c, **{op: "inference", oc: "failure"}) == 5
    assert len(outcomes) == 4

    rates = m["model_health.success_rate"]
    assert value(rates, **g) == pytest.approx(0.75)
    assert value(rates, **c) == 0.0

    states = m["model_health.breaker.state"]
    st = "model_health.breaker.state"
    assert len(states) == 6  # 3 series per key
    assert value(states, **g, **{st: "closed"}) == 1
    assert value(states, **g, **{st: "open"}) == 0
    assert value(states, **g, **{st: "half_open"}) == 0
    assert value(states, **c, **{st: "open"}) == 1
    assert value(states, **c, **{st: "closed"}) == 0

    transitions = m["model_health.breaker.transitions"]
    assert transitions == [({**c, st: "open"}, 1)]

    assert m["model_health.registry.evictions"] == [({}, 0)]
    assert m["model_health.internal_errors"] == [({}, _internal.internal_error_count())]


def test_success_rate_absent_when_window_empty_and_evictions_counted(env: Env) -> None:
    env.registry.record(GPT, Outcome.NEUTRAL)
    m = env.collect()
    assert "model_health.success_rate" not in m or m["model_health.success_rate"] == []
    for i in range(3):
        env.registry.record(ModelKey(provider="groq", model=f"m{i}"), Outcome.SUCCESS)
    m = env.collect()
    assert m["model_health.registry.evictions"] == [({}, 2)]
    assert len(m["model_health.breaker.state"]) == 6  # only the 2 keys still held


def test_callbacks_never_raise(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.registry.record(GPT, Outcome.SUCCESS)

    def broken() -> Any:
        raise RuntimeError("registry broke")

    monkeypatch.setattr(env.registry, "snapshot", broken)
    before = _internal.internal_error_count()
    m = env.collect()  # does not raise
    assert "model_health.outcomes" not in m or m["model_health.outcomes"] == []
    assert _internal.internal_error_count() >= before + 4
    assert m["model_health.registry.evictions"] == [({}, 0)]


def test_close_stops_reporting(env: Env) -> None:
    env.registry.record(GPT, Outcome.SUCCESS)
    env.handle.close()
    m = env.collect()
    assert all(points == [] for points in m.values())
