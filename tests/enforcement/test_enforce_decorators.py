"""``@monitor(enforce=True)``: a refused call raises ``ModelUnavailableError`` before the function runs,
leaves a rejected span and a ``model_health.rejections`` count, and nothing in the registry."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from kit import Telemetry

from otel_model_health import (
    BreakerConfig,
    HealthRegistry,
    ModelKey,
    ModelUnavailableError,
    Outcome,
    defaults,
    monitor,
    probe,
)
from otel_model_health.health.types import BreakerState, HealthTransition
from otel_model_health.testing import ManualClock

KEY = ModelKey(provider="openai", model="gpt-4o")
CONFIG = BreakerConfig(open_wait_s=30.0, max_open_wait_s=30.0, jitter=0.0, half_open_trials=1)


@pytest.fixture
def breaker_config() -> BreakerConfig:
    return CONFIG


def _open(registry: HealthRegistry, duration_s: float | None = None) -> None:
    registry.force_open(provider="openai", model="gpt-4o", duration_s=duration_s)


def test_an_open_breaker_refuses_before_the_function_runs(t: Telemetry[HealthRegistry]) -> None:
    calls: list[str] = []

    @monitor(provider="openai", enforce=True, **t.options())
    def create(model: str) -> str:
        calls.append(model)
        return "ok"

    assert create(model="gpt-4o") == "ok"
    seen: list[HealthTransition] = []
    registry = t.recorder
    _open(registry)
    registry.subscribe(seen.append)
    before = registry.get(provider="openai", model="gpt-4o")
    with pytest.raises(ModelUnavailableError) as raised:
        create(model="gpt-4o")
    assert calls == ["gpt-4o"]  # the refused call never ran
    error = raised.value
    assert (error.key, error.state, error.reason, error.retry_after_s) == (
        KEY,
        BreakerState.OPEN,
        "breaker_open",
        30.0,
    )
    # The refusal is not the model's failure: no window, no total, no transition.
    assert registry.get(provider="openai", model="gpt-4o") == before and seen == []
    span = t.model_spans()[-1]
    attributes = span.attributes or {}
    assert attributes["model_health.outcome"] == "rejected"
    assert attributes["error.type"] == "model_unavailable"
    assert attributes["model_health.rejection.reason"] == "breaker_open"
    assert not span.status.is_ok
    [point] = t.metric_points("model_health.rejections")
    assert point.value == 1 and point.attributes["model_health.rejection.reason"] == "breaker_open"
    assert point.attributes["gen_ai.request.model"] == "gpt-4o"
    durations = t.metric_points("gen_ai.client.operation.duration")
    assert sum(p.count for p in durations) == 1  # only the call that was made


def test_passive_by_default_and_off_when_asked(t: Telemetry[HealthRegistry]) -> None:
    calls: list[str] = []

    @monitor(provider="openai", **t.options())
    def passive(model: str) -> None:
        calls.append(model)

    @monitor(provider="openai", enforce=False, **t.options())
    def off(model: str) -> None:
        calls.append(model)

    _open(t.recorder)
    passive(model="gpt-4o")
    off(model="gpt-4o")
    assert calls == ["gpt-4o", "gpt-4o"]


def test_the_environment_variable_turns_it_on(
    t: Telemetry[HealthRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    @monitor(provider="openai", **t.options())
    def create(model: str) -> None:
        return None

    _open(t.recorder)
    monkeypatch.setenv(defaults.ENFORCE_ENV, "true")
    defaults.set_call_classifier(None)  # a new generation: the variable is read again
    try:
        with pytest.raises(ModelUnavailableError):
            create(model="gpt-4o")
    finally:
        monkeypatch.delenv(defaults.ENFORCE_ENV)
        defaults.set_call_classifier(None)
    create(model="gpt-4o")


def test_half_open_admits_one_trial_and_refuses_the_concurrent_second(
    t: Telemetry[HealthRegistry], clock: ManualClock
) -> None:
    inner: list[str] = []

    @monitor(provider="openai", enforce=True, **t.options())
    def second(model: str) -> str:
        return "second"

    @monitor(provider="openai", enforce=True, **t.options())
    def trial(model: str) -> str:
        # While the trial is in flight (holding the only slot), another caller (a thread of its own,
        # not inside this call) is refused.
        def other_caller() -> None:
            try:
                second(model=model)
            except ModelUnavailableError as exc:
                inner.append(exc.reason)

        thread = threading.Thread(target=other_caller)
        thread.start()
        thread.join()
        return "trial"

    _open(t.recorder, duration_s=1.0)
    clock.advance(1.0)
    assert trial(model="gpt-4o") == "trial"
    assert inner == ["trials_busy"]
    state = t.recorder.get(provider="openai", model="gpt-4o")
    assert state is not None and state.breaker_state is BreakerState.CLOSED  # the trial succeeded


def test_a_trial_slot_held_by_an_enclosing_call_of_the_same_model_covers_the_inner_one(
    t: Telemetry[HealthRegistry], clock: ManualClock
) -> None:
    @monitor(provider="openai", enforce=True, **t.options())
    def sdk_call(model: str) -> str:
        return "inner"

    @monitor(provider="openai", enforce=True, **t.options())
    def handler(model: str) -> str:
        return sdk_call(model=model)  # the same model: the outer call's slot is this call

    _open(t.recorder, duration_s=1.0)
    clock.advance(1.0)
    assert handler(model="gpt-4o") == "inner"
    assert [(s.attributes or {}).get("model_health.outcome") for s in t.model_spans()] == ["success"] * 2


def test_async_and_generator_functions_are_refused_too(t: Telemetry[HealthRegistry]) -> None:
    @monitor(provider="openai", enforce=True, **t.options())
    async def acreate(model: str) -> str:
        raise AssertionError("not called")

    @monitor(provider="openai", enforce=True, **t.options())
    def stream(model: str) -> Iterator[str]:
        raise AssertionError("not called")
        yield ""

    @monitor(provider="openai", enforce=True, **t.options())
    async def astream(model: str) -> AsyncIterator[str]:
        raise AssertionError("not called")
        yield ""

    async def consume() -> None:
        async for _ in astream(model="gpt-4o"):
            pass

    _open(t.recorder)
    with pytest.raises(ModelUnavailableError):
        asyncio.run(acreate(model="gpt-4o"))
    with pytest.raises(ModelUnavailableError):
        next(stream(model="gpt-4o"))
    with pytest.raises(ModelUnavailableError):
        asyncio.run(consume())
    assert [(s.attributes or {}).get("model_health.outcome") for s in t.model_spans()] == ["rejected"] * 3
    assert t.recorder.get(provider="openai", model="gpt-4o").outcome_totals == {}  # type: ignore[union-attr]


def test_a_recorder_without_admission_enforces_nothing(telemetry: Telemetry[object]) -> None:
    @monitor(provider="openai", enforce=True, **telemetry.options())
    def create(model: str) -> str:
        return "ok"

    assert create(model="gpt-4o") == "ok"
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS]  # type: ignore[attr-defined]


def test_health_checks_are_never_refused(t: Telemetry[HealthRegistry]) -> None:
    @probe(provider="openai", enforce=True, **t.options())
    def check(model: str) -> str:
        return "pong"

    _open(t.recorder)
    assert check(model="gpt-4o") == "pong"  # recorded while OPEN: counts, does not move the state
    state = t.recorder.get(provider="openai", model="gpt-4o")
    assert state is not None and state.outcome_totals[("health_check", Outcome.SUCCESS)] == 1
