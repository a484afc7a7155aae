"""The registry's admission decisions (``admit``, ``choose``) on a manual clock, and refusals recorded by
hand: counted, never in a window."""

from __future__ import annotations

import pytest

from otel_model_health import BreakerConfig, HealthRegistry, ModelKey, Outcome
from otel_model_health.health.admission import BREAKER_OPEN, RATE_LIMITED, TRIALS_BUSY, Refusal
from otel_model_health.health.breaker import Permit
from otel_model_health.health.types import BreakerState, HealthTransition
from otel_model_health.testing import ManualClock

CONFIG = BreakerConfig(open_wait_s=30.0, max_open_wait_s=30.0, jitter=0.0, half_open_trials=2)
A = ModelKey(provider="openai", model="gpt-4o")
B = ModelKey(provider="anthropic", model="claude-sonnet-4-6")
C = ModelKey(provider="openai", model="llama-3.1-8b", gateway="self_hosted")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1000.0)


@pytest.fixture
def registry(clock: ManualClock) -> HealthRegistry:
    return HealthRegistry(config=CONFIG, clock=clock, wall_clock=lambda: 1_700_000_000.0 + clock())


def _open(registry: HealthRegistry, key: ModelKey, duration_s: float | None = None) -> None:
    registry.force_open(provider=key.provider, model=key.model, gateway=key.gateway, duration_s=duration_s)


def test_unknown_and_closed_models_are_admitted_without_a_permit(registry: HealthRegistry) -> None:
    assert registry.admit(A) is None
    registry.record(A, Outcome.SUCCESS)
    assert registry.admit(A) is None


def test_open_refuses_with_the_remaining_wait_then_half_open_hands_out_trials(
    registry: HealthRegistry, clock: ManualClock
) -> None:
    _open(registry, A)
    refusal = registry.admit(A)
    assert refusal == Refusal(A, BreakerState.OPEN, BREAKER_OPEN, 30.0)
    clock.advance(20.0)
    refused = registry.admit(A)
    assert isinstance(refused, Refusal) and refused.retry_after_s == pytest.approx(10.0)
    clock.advance(10.0)  # the wait is over: HALF_OPEN, two trial slots
    first, second = registry.admit(A), registry.admit(A)
    assert isinstance(first, Permit) and first.tracked
    assert isinstance(second, Permit) and second.tracked
    busy = registry.admit(A)
    assert busy == Refusal(A, BreakerState.HALF_OPEN, TRIALS_BUSY, None)
    first.release()  # a trial that was not made gives its slot back
    assert isinstance(registry.admit(A), Permit)


def test_a_trial_outcome_frees_no_extra_slot_and_the_last_success_closes(
    registry: HealthRegistry, clock: ManualClock
) -> None:
    _open(registry, A, duration_s=1.0)
    clock.advance(1.0)
    permits = [registry.admit(A), registry.admit(A)]
    assert all(isinstance(p, Permit) for p in permits)
    registry.record(A, Outcome.SUCCESS, started_at=clock())  # one trial done: still no free slot
    assert isinstance(registry.admit(A), Refusal)
    registry.record(A, Outcome.SUCCESS, started_at=clock())
    assert registry.admit(A) is None  # CLOSED


def test_retry_after_refuses_for_its_duration_then_admits(
    registry: HealthRegistry, clock: ManualClock
) -> None:
    registry.record(A, Outcome.RATE_LIMITED, retry_after_s=2.0, status_code=429)
    refusal = registry.admit(A)
    assert refusal == Refusal(A, BreakerState.CLOSED, RATE_LIMITED, 2.0)
    clock.advance(1.9)
    later = registry.admit(A)
    assert isinstance(later, Refusal) and later.retry_after_s == pytest.approx(0.1)
    clock.advance(0.1)
    assert registry.admit(A) is None


def test_open_and_rate_limited_waits_for_the_longer(registry: HealthRegistry) -> None:
    registry.record(A, Outcome.RATE_LIMITED, retry_after_s=90.0)
    _open(registry, A)
    refusal = registry.admit(A)
    assert isinstance(refusal, Refusal) and refusal.reason == BREAKER_OPEN and refusal.retry_after_s == 90.0


def test_choose_takes_the_first_available_candidate(registry: HealthRegistry, clock: ManualClock) -> None:
    assert registry.choose([A, B, C]).key == A
    _open(registry, A)
    choice = registry.choose([A, B, C])
    assert choice.key == B and [r.key for r in choice.refusals] == [A]
    registry.record(B, Outcome.RATE_LIMITED, retry_after_s=5.0)
    assert registry.choose([A, B, C]).key == C


def test_choose_reports_the_soonest_retry_when_every_candidate_is_down(
    registry: HealthRegistry, clock: ManualClock
) -> None:
    _open(registry, A, duration_s=40.0)
    registry.record(B, Outcome.RATE_LIMITED, retry_after_s=12.0)
    _open(registry, C, duration_s=25.0)
    choice = registry.choose([A, B, C])
    assert choice.key is None
    assert [r.reason for r in choice.refusals] == [BREAKER_OPEN, RATE_LIMITED, BREAKER_OPEN]
    assert choice.retry_after_s == 12.0
    assert choice.retry_at == pytest.approx(registry.wall_time() + 12.0)
    clock.advance(12.0)
    assert registry.choose([A, B, C]).key == B


def test_choose_takes_no_permit(registry: HealthRegistry, clock: ManualClock) -> None:
    _open(registry, A, duration_s=1.0)
    clock.advance(1.0)
    for _ in range(5):
        assert registry.choose([A]).key == A
    assert isinstance(registry.admit(A), Permit)


def test_a_refusal_recorded_by_hand_is_counted_and_never_judged(registry: HealthRegistry) -> None:
    seen: list[HealthTransition] = []
    registry.subscribe(seen.append)
    registry.record(A, Outcome.SUCCESS)
    for _ in range(20):
        registry.record(A, Outcome.REJECTED, error_type="model_unavailable")
    state = registry.get(provider=A.provider, model=A.model)
    assert state is not None
    assert state.calls_in_window == 1 and state.failures_in_window == 0
    assert state.outcome_totals[("inference", Outcome.REJECTED)] == 20
    assert state.breaker_state is BreakerState.CLOSED and seen == []
    registry.record(B, Outcome.REJECTED)  # creates no key
    assert not registry.tracks(B)
