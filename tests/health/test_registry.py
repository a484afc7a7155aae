"""HealthRegistry: snapshots, summary, provider outages, eviction, listeners."""

from __future__ import annotations

import datetime as dt

import pytest

from otel_model_health import _internal
from otel_model_health.health.model_state import MAX_OPERATIONS_PER_KEY, OTHER_OPERATION
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import (
    BreakerConfig,
    BreakerState,
    HealthRecorder,
    HealthStatus,
    HealthTransition,
    TransitionKind,
)
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import ManualClock

S, F, R, N = Outcome.SUCCESS, Outcome.FAILURE, Outcome.RATE_LIMITED, Outcome.NEUTRAL
WALL = 1_700_000_000.0


def make(**kwargs: object) -> tuple[HealthRegistry, ManualClock, list[HealthTransition]]:
    clock = ManualClock(50.0)
    config = kwargs.pop("config", BreakerConfig(jitter=0.0))
    registry = HealthRegistry(
        config=config,  # type: ignore[arg-type]
        clock=clock,
        wall_clock=lambda: clock() + WALL,
        **kwargs,  # type: ignore[arg-type]
    )
    seen: list[HealthTransition] = []
    registry.subscribe(seen.append)
    return registry, clock, seen


def key(model: str, provider: str = "openai", gateway: str = "direct") -> ModelKey:
    return ModelKey(provider=provider, model=model, gateway=gateway)


def fail(registry: HealthRegistry, k: ModelKey, n: int = 5) -> None:
    for _ in range(n):
        registry.record(k, F, error_type="503", status_code=503)


def test_registry_satisfies_the_recorder_protocol() -> None:
    recorder: HealthRecorder = HealthRegistry()
    assert isinstance(recorder.now(), float)


def test_get_unknown_model_is_none_and_model_case_is_kept() -> None:
    registry, _, _ = make()
    assert registry.get(provider="openai", model="gpt-4o") is None
    registry.record(key("Qwen/Qwen2.5-72B-Instruct", provider="Together"), S)
    assert registry.get(provider="together", model="qwen/qwen2.5-72b-instruct") is None
    state = registry.get(provider="TOGETHER", model="Qwen/Qwen2.5-72B-Instruct")
    assert state is not None and state.key.model == "Qwen/Qwen2.5-72B-Instruct"
    assert state.key.provider == "together"


def test_snapshot_figures() -> None:
    registry, clock, _ = make()
    k = key("gpt-4o")
    clock.advance(10.0)  # to 60
    for i in range(1, 21):
        registry.record(k, S, latency_s=float(i))
    registry.record(k, N, operation="health_check", error_type="400", error_message="bad")
    registry.record(k, F, latency_s=100.0, error_type="timeout", error_message="key sk-proj-abcdefgh12345")
    state = registry.get(provider="openai", model="gpt-4o")
    assert state is not None
    assert state.status is HealthStatus.HEALTHY  # 19/20 = 0.95 is not below 0.95
    assert state.success_rate == pytest.approx(0.95)
    assert (state.calls_in_window, state.failures_in_window, state.consecutive_failures) == (20, 1, 1)
    assert state.outcome_totals == {("inference", S): 20, ("inference", F): 1, ("health_check", N): 1}
    # latencies of the window's 20 calls: 2 … 20 and 100
    assert state.latency_p50_s == 11.0
    assert state.latency_p95_s == 20.0
    assert state.last_outcome is F
    assert state.last_outcome_at == WALL + 60.0
    assert state.last_failure_at == WALL + 60.0
    assert state.first_seen_at == WALL + 60.0
    assert state.last_error is not None
    assert state.last_error.error_type == "timeout"
    assert state.last_error.message is not None and "sk-proj" not in state.last_error.message
    assert state.last_error.latency_s == 100.0
    assert state.open_until is None and state.rate_limited_until is None
    assert state.breaker_state is BreakerState.CLOSED


def test_neutral_error_does_not_become_last_error() -> None:
    registry, _, _ = make()
    registry.record(key("m"), N, error_type="400", error_message="your fault")
    state = registry.get(provider="openai", model="m")
    assert state is not None and state.last_error is None and state.status is HealthStatus.HEALTHY
    assert state.success_rate is None


def test_operations_per_key_are_capped() -> None:
    registry, _, _ = make()
    k = key("m")
    for i in range(MAX_OPERATIONS_PER_KEY + 5):
        registry.record(k, S, operation=f"op{i}")
    state = registry.get(provider="openai", model="m")
    assert state is not None
    ops = {op for op, _ in state.outcome_totals}
    assert len(ops) == MAX_OPERATIONS_PER_KEY + 1
    assert state.outcome_totals[(OTHER_OPERATION, S)] == 5


def test_provider_outage_and_recovery() -> None:
    registry, clock, seen = make()
    a, b, c = key("a"), key("b"), key("c")
    other = key("x", provider="anthropic")
    registry.record(c, S)
    clock.advance(601.0)  # c goes stale: it does not hold the outage off
    registry.record(a, S)
    registry.record(b, S)
    registry.record(other, S)
    fail(registry, a)
    assert TransitionKind.PROVIDER_OUTAGE not in [t.kind for t in seen]
    fail(registry, b)
    outages = [t for t in seen if t.kind is TransitionKind.PROVIDER_OUTAGE]
    assert len(outages) == 1
    outage = outages[0]
    assert outage.provider == "openai" and outage.key == b
    assert set(outage.provider_models) == {a, b}
    fail(registry, b, 2)  # no second outage while it lasts
    assert [t.kind for t in seen].count(TransitionKind.PROVIDER_OUTAGE) == 1
    summary = registry.summary()
    assert summary["status"] == "unhealthy"
    assert summary["providers"]["openai"] == {"status": "unhealthy", "models": 3, "unhealthy": 2}
    assert summary["providers"]["anthropic"] == {"status": "healthy", "models": 1, "unhealthy": 0}
    assert summary["models"] == {
        "total": 4,
        "healthy": 1,
        "degraded": 0,
        "unhealthy": 2,
        "stale": 1,
        "unknown": 0,
    }
    # a half-opens and recovers: the provider is serving again.
    clock.advance(30.0)
    for _ in range(3):
        registry.record(a, S)
    recovered = [t for t in seen if t.kind is TransitionKind.PROVIDER_RECOVERED]
    assert len(recovered) == 1
    assert recovered[0].key == a and recovered[0].provider == "openai"
    assert registry.summary()["providers"]["openai"]["status"] == "degraded"  # b is half-open


def test_single_model_provider_has_no_outage() -> None:
    registry, _, seen = make()
    fail(registry, key("only"))
    assert TransitionKind.PROVIDER_OUTAGE not in [t.kind for t in seen]


def test_summary_shape_and_provider_filter() -> None:
    registry, clock, _ = make()
    assert registry.summary()["status"] == "unknown"
    registry.record(key("a"), S)
    registry.record(key("b", provider="anthropic"), R)
    summary = registry.summary()
    assert summary["status"] == "degraded"
    assert summary["models"]["degraded"] == 1 and summary["models"]["healthy"] == 1
    checked = dt.datetime.fromisoformat(summary["checked_at"])
    assert checked.timestamp() == pytest.approx(clock() + WALL)
    assert checked.tzinfo is not None
    only = registry.summary(provider="OpenAI")
    assert list(only["providers"]) == ["openai"]
    assert only["models"]["total"] == 1 and only["status"] == "healthy"


def test_lru_eviction() -> None:
    registry, _, _ = make(max_keys=3)
    for m in ("a", "b", "c"):
        registry.record(key(m), S)
    registry.record(key("a"), S)  # a is now the most recently used
    registry.record(key("d"), S)
    assert registry.evictions == 1
    assert registry.get(provider="openai", model="b") is None
    assert {k.model for k in registry.model_keys()} == {"a", "c", "d"}
    for m in ("e", "f", "g", "h"):
        registry.record(key(m), S)
    assert len(registry.model_keys()) == 3 and registry.evictions == 5
    registry.clear()
    assert registry.model_keys() == [] and registry.snapshot() == [] and registry.evictions == 0


def test_snapshot_is_sorted_and_advances_clock_driven_state() -> None:
    registry, clock, seen = make()
    fail(registry, key("z"))
    registry.record(key("a", provider="anthropic"), S)
    clock.advance(31.0)
    states = registry.snapshot()
    assert [s.key.model for s in states] == ["a", "z"]
    assert states[1].breaker_state is BreakerState.HALF_OPEN
    assert seen[-1].kind is TransitionKind.HALF_OPEN


def test_listener_errors_are_swallowed_and_others_still_called() -> None:
    registry, _, seen = make()
    before = _internal.internal_error_count()

    def boom(t: HealthTransition) -> None:
        raise RuntimeError("listener bug")

    registry.subscribe(boom)
    later: list[HealthTransition] = []
    registry.subscribe(later.append)
    fail(registry, key("m"))
    assert [t.kind for t in later] == [TransitionKind.FIRST_FAILURE, TransitionKind.BREAKER_OPENED]
    assert len(seen) == 2
    assert _internal.internal_error_count() >= before + 2


def test_unsubscribe() -> None:
    registry, _, seen = make()
    extra: list[HealthTransition] = []
    unsubscribe = registry.subscribe(extra.append)
    unsubscribe()
    unsubscribe()  # idempotent
    registry.unsubscribe(seen.append)  # a bound method equal to the one subscribed
    fail(registry, key("m"))
    assert extra == [] and seen == []


def test_reentrant_listener_keeps_order() -> None:
    registry, _, seen = make()
    k2 = key("echo")

    def echo(t: HealthTransition) -> None:
        if t.key != k2 and t.kind is TransitionKind.FIRST_FAILURE:
            registry.record(k2, F)  # produces its own first_failure, delivered after this one

    registry.subscribe(echo)
    registry.record(key("m"), F)
    assert [(t.key.model, t.kind) for t in seen] == [
        ("m", TransitionKind.FIRST_FAILURE),
        ("echo", TransitionKind.FIRST_FAILURE),
    ]


def test_transition_fields() -> None:
    registry, clock, seen = make()
    k = key("m")
    registry.record(k, S)
    clock.advance(20.0)  # to 70
    fail(registry, k)
    first, opened = seen
    assert first.before is BreakerState.CLOSED and first.after is BreakerState.CLOSED
    assert first.before_status is HealthStatus.HEALTHY
    assert opened.before is BreakerState.CLOSED and opened.after is BreakerState.OPEN
    assert opened.after_status is HealthStatus.UNHEALTHY and opened.state.status is HealthStatus.UNHEALTHY
    assert opened.at == WALL + 70.0 and opened.operation == "inference"
    assert opened.state.open_until == WALL + 100.0


def test_record_never_raises_on_garbage() -> None:
    registry, _, _ = make()
    before = _internal.internal_error_count()
    registry.record("not a key", "nonsense")  # type: ignore[arg-type]
    registry.record(key("m"), F, error_message=12345)  # type: ignore[arg-type]
    assert _internal.internal_error_count() > before


def test_to_monotonic() -> None:
    registry, clock, _ = make()
    assert registry.to_monotonic(WALL + clock() - 2.5) == pytest.approx(clock() - 2.5)
