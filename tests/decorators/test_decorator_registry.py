"""Decorated calls feeding the real HealthRegistry: a failing model opens its breaker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import BreakerState, HealthStatus, HealthTransition, TransitionKind
from otel_model_health.instrument.decorators import monitor, probe
from otel_model_health.testing import ManualClock


class InternalServerError(Exception):
    status_code = 500


def test_failing_model_opens_its_breaker(telemetry: Any) -> None:
    clock = ManualClock()
    registry = HealthRegistry(clock=clock)
    transitions: list[HealthTransition] = []
    registry.subscribe(transitions.append)
    options = {"tracer_provider": telemetry.tracer_provider, "meter_provider": telemetry.meter_provider}

    @monitor(provider="openai", registry=registry, **options)
    def chat(prompt: str, model: str) -> str:
        if model == "bad-model":
            raise InternalServerError("upstream down")
        return "ok"

    for _ in range(5):
        assert chat("hi", "good-model") == "ok"
        with pytest.raises(InternalServerError):
            chat("hi", "bad-model")

    bad = registry.get(provider="openai", model="bad-model")
    good = registry.get(provider="openai", model="good-model")
    assert bad is not None
    assert good is not None
    assert bad.breaker_state is BreakerState.OPEN
    assert bad.status is HealthStatus.UNHEALTHY
    assert bad.last_error is not None
    assert bad.last_error.error_type == "500"
    assert good.breaker_state is BreakerState.CLOSED
    assert good.status is HealthStatus.HEALTHY
    assert not registry.is_available(provider="openai", model="bad-model")
    opened = [t for t in transitions if t.kind is TransitionKind.BREAKER_OPENED]
    assert len(opened) == 1
    # The transition links back to the span of the call that opened the breaker.
    last_bad_span = [s for s in telemetry.spans() if s.name == "chat bad-model"][-1]
    assert opened[0].trace_id == last_bad_span.context.trace_id
    assert opened[0].span_id == last_bad_span.context.span_id


def test_probe_refreshes_health_through_streams(telemetry: Any) -> None:
    registry = HealthRegistry(clock=ManualClock())

    @probe(provider="anthropic", registry=registry, tracer_provider=telemetry.tracer_provider)
    def check(model: str) -> Iterator[dict[str, Any]]:
        yield {"type": "message_start", "message": {"model": model}}
        yield {"type": "message_stop"}

    assert len(list(check("claude-test"))) == 2
    state = registry.get(provider="anthropic", model="claude-test")
    assert state is not None
    assert state.status is HealthStatus.HEALTHY
    assert state.outcome_totals
    assert next(iter(state.outcome_totals))[0] == "health_check"


@pytest.mark.parametrize("stop", [SystemExit(0), KeyboardInterrupt()])
def test_process_stopping_during_a_call_is_not_the_models_failure(
    telemetry: Any, stop: BaseException
) -> None:
    registry = HealthRegistry(clock=ManualClock())

    @monitor(provider="openai", registry=registry, tracer_provider=telemetry.tracer_provider)
    def chat(model: str) -> str:
        raise stop

    with pytest.raises(type(stop)):
        chat("gpt-4o")
    state = registry.get(provider="openai", model="gpt-4o")
    assert state is not None
    assert dict(state.outcome_totals) == {("inference", "neutral"): 1}
    assert state.failures_in_window == 0


class NotFoundError(Exception):
    status_code = 404


def test_decorated_404_counts_against_a_model_only_after_it_worked(telemetry: Any) -> None:
    registry = HealthRegistry(clock=ManualClock())
    works = {"real": True}

    @monitor(provider="openai", registry=registry, tracer_provider=telemetry.tracer_provider)
    def chat(model: str) -> str:
        if not works.get(model):
            raise NotFoundError(f"The model `{model}` does not exist")
        return "ok"

    for _ in range(10):
        with pytest.raises(NotFoundError):
            chat("typo")
    assert registry.get(provider="openai", model="typo") is None
    assert [(k[2], k[3]) for k in registry.unattributed_outcomes()] == [("inference", "unknown_model")]
    assert chat("real") == "ok"
    works["real"] = False  # removed upstream
    with pytest.raises(NotFoundError):
        chat("real")
    state = registry.get(provider="openai", model="real")
    assert state is not None and state.failures_in_window == 1
    spans = [s for s in telemetry.spans() if s.name in ("chat typo", "chat real")]
    assert [s.attributes["model_health.outcome"] for s in spans][-2:] == ["success", "failure"]
    assert spans[0].attributes["model_health.outcome"] == "unknown_model"
