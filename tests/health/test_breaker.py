"""Breaker transitions and edges, driven through the registry with an injected clock and random."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.trace import SpanContext, TraceFlags

from otel_model_health.health.breaker import Breaker
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import (
    BreakerConfig,
    BreakerState,
    HealthStatus,
    HealthTransition,
    TransitionKind,
)
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import ManualClock

S, F, R, N = Outcome.SUCCESS, Outcome.FAILURE, Outcome.RATE_LIMITED, Outcome.NEUTRAL
KEY = ModelKey(provider="openai", model="gpt-4o")
K: dict[str, Any] = {"provider": "openai", "model": "gpt-4o"}


class FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


class Harness:
    def __init__(self, config: BreakerConfig | None = None, rnd: float = 0.5) -> None:
        self.clock = ManualClock()
        self.registry = HealthRegistry(
            config=config or BreakerConfig(),
            clock=self.clock,
            wall_clock=lambda: self.clock() + 1_700_000_000.0,
            random=FixedRandom(rnd),
        )
        self.transitions: list[HealthTransition] = []
        self.registry.subscribe(self.transitions.append)

    def rec(self, *outcomes: Outcome, **kwargs: object) -> None:
        for o in outcomes:
            self.registry.record(KEY, o, **kwargs)  # type: ignore[arg-type]

    def kinds(self) -> list[TransitionKind]:
        return [t.kind for t in self.transitions]

    def state(self) -> BreakerState:
        s = self.registry.get(**K)
        assert s is not None
        return s.breaker_state

    def open_wait(self) -> float:
        s = self.registry.get(**K)
        assert s is not None and s.open_until is not None
        return s.open_until - (self.clock() + 1_700_000_000.0)

    def to_half_open(self) -> None:
        self.clock.advance(self.open_wait())
        assert self.state() is BreakerState.HALF_OPEN


def no_consecutive(**kw: object) -> BreakerConfig:
    return BreakerConfig(consecutive_failures=0, jitter=0.0, **kw)  # type: ignore[arg-type]


def test_trips_exactly_at_threshold() -> None:
    h = Harness(no_consecutive(minimum_calls=4))
    h.rec(S, S, F)
    assert h.state() is BreakerState.CLOSED
    h.rec(F)  # 2 / 4 = 0.5, exactly the threshold
    assert h.state() is BreakerState.OPEN
    assert h.kinds() == [TransitionKind.FIRST_FAILURE, TransitionKind.BREAKER_OPENED]


def test_just_below_threshold_stays_closed() -> None:
    h = Harness(no_consecutive(minimum_calls=5))
    h.rec(S, S, S, F, F)  # 0.4
    assert h.state() is BreakerState.CLOSED
    assert h.kinds() == [TransitionKind.FIRST_FAILURE]


def test_decimal_threshold_is_exact() -> None:
    h = Harness(no_consecutive(minimum_calls=10, failure_rate_threshold=0.3))
    h.rec(S, S, S, S, S, S, S, F, F, F)  # 3 / 10 == 0.3 (would miss with 0.3 * 10 > 3)
    assert h.state() is BreakerState.OPEN


def test_minimum_calls_not_reached() -> None:
    h = Harness(no_consecutive(minimum_calls=5))
    h.rec(F, F, F, F)
    assert h.state() is BreakerState.CLOSED
    h.rec(F)
    assert h.state() is BreakerState.OPEN


def test_a_success_never_trips() -> None:
    h = Harness(no_consecutive(minimum_calls=5))
    h.rec(F, F, S, F)  # 3/4, below minimum calls
    h.rec(S)  # 3/5 = 0.6 at minimum calls, but the breaker trips only on a failure
    assert h.state() is BreakerState.CLOSED
    h.rec(F)
    assert h.state() is BreakerState.OPEN


def test_consecutive_failures_trip_below_rate() -> None:
    h = Harness(BreakerConfig(jitter=0.0))
    h.rec(*[S] * 20)
    h.rec(F, F, F, F)
    assert h.state() is BreakerState.CLOSED
    h.rec(F)  # 5 in a row, though only 5/20 = 25% of the window
    assert h.state() is BreakerState.OPEN
    s = h.registry.get(**K)
    assert s is not None and s.consecutive_failures == 5 and s.failures_in_window == 5


def test_success_resets_consecutive_count() -> None:
    h = Harness(BreakerConfig(jitter=0.0, minimum_calls=20))
    h.rec(F, F, F, F, S, F, F, F, F)
    assert h.state() is BreakerState.CLOSED


def test_neutral_and_rate_limited_are_not_in_the_failure_rate() -> None:
    h = Harness(no_consecutive(minimum_calls=2))
    h.rec(S, N, N, N, R, R, F)  # window holds S, F: 1/2 = 0.5 → trips only because N/R are excluded
    s = h.registry.get(**K)
    assert s is not None
    assert s.calls_in_window == 2
    assert s.outcome_totals[("inference", N)] == 3
    assert s.outcome_totals[("inference", R)] == 2
    assert h.state() is BreakerState.OPEN


def test_neutral_does_not_break_a_failure_run() -> None:
    h = Harness(BreakerConfig(jitter=0.0, minimum_calls=20))
    h.rec(F, F, N, F, F, R, F)
    assert h.state() is BreakerState.OPEN


def test_outcomes_while_open_count_but_do_not_move_state() -> None:
    h = Harness(BreakerConfig(jitter=0.0))
    h.rec(*[F] * 5)
    assert h.state() is BreakerState.OPEN
    h.rec(S, S, S, S, S, S)
    s = h.registry.get(**K)
    assert s is not None
    assert s.breaker_state is BreakerState.OPEN
    assert s.calls_in_window == 11 and s.failures_in_window == 5
    h.rec(F, F)
    assert h.kinds() == [TransitionKind.FIRST_FAILURE, TransitionKind.BREAKER_OPENED]


def test_backoff_grows_and_is_capped() -> None:
    h = Harness(BreakerConfig(jitter=0.0))
    h.rec(*[F] * 5)
    waits = [h.open_wait()]
    for _ in range(6):
        h.to_half_open()
        h.rec(F)  # a failing trial re-opens with the next level
        waits.append(h.open_wait())
    assert waits == pytest.approx([30.0, 60.0, 120.0, 240.0, 300.0, 300.0, 300.0])
    assert h.kinds().count(TransitionKind.HALF_OPEN_FAILED) == 6


def recover(h: Harness) -> None:
    h.to_half_open()
    h.rec(S, S, S)
    assert h.state() is BreakerState.CLOSED


def test_backoff_level_survives_a_short_closed_period() -> None:
    h = Harness(BreakerConfig(jitter=0.0))
    h.rec(*[F] * 5)  # level 0 → waits 30, level becomes 1
    recover(h)
    h.clock.advance(59.0)  # less than 2 × 30 s closed
    h.rec(*[F] * 5)
    assert h.open_wait() == pytest.approx(60.0)


def test_backoff_decays_one_level_per_twice_the_current_wait() -> None:
    h = Harness(BreakerConfig(jitter=0.0))
    h.rec(*[F] * 5)  # 30
    h.to_half_open()
    h.rec(F)  # 60
    h.to_half_open()
    h.rec(F)  # 120; level is now 3
    recover(h)
    # level 3 → 2 after 240 s, 2 → 1 after 120 s more, 1 → 0 after 60 s more.
    h.clock.advance(240.0 + 120.0)
    h.rec(*[F] * 5)
    assert h.open_wait() == pytest.approx(60.0)  # level 1

    h2 = Harness(BreakerConfig(jitter=0.0))
    h2.rec(*[F] * 5)
    recover(h2)
    h2.clock.advance(60.0)  # exactly 2 × 30 s
    h2.rec(*[F] * 5)
    assert h2.open_wait() == pytest.approx(30.0)


@pytest.mark.parametrize(("rnd", "expected"), [(0.0, 27.0), (0.5, 30.0), (0.999999, 33.0)])
def test_jitter_bounds(rnd: float, expected: float) -> None:
    h = Harness(BreakerConfig(), rnd=rnd)
    h.rec(*[F] * 5)
    assert h.open_wait() == pytest.approx(expected, abs=1e-3)
    assert 27.0 <= h.open_wait() <= 33.0


def test_retry_after_is_honoured_and_is_not_a_failure() -> None:
    h = Harness()
    h.rec(S)
    h.rec(R, retry_after_s=12.0, error_type="429", status_code=429)
    s = h.registry.get(**K)
    assert s is not None
    assert s.breaker_state is BreakerState.CLOSED
    assert s.status is HealthStatus.DEGRADED
    assert s.failures_in_window == 0 and s.success_rate == 1.0
    assert s.rate_limited_until == pytest.approx(h.clock() + 1_700_000_000.0 + 12.0)
    assert s.last_error is not None and s.last_error.status_code == 429
    assert not h.registry.is_available(**K)
    assert h.registry.try_acquire(**K) is None
    h.clock.advance(11.9)
    assert not h.registry.is_available(**K)
    h.clock.advance(0.1)
    assert h.registry.is_available(**K)
    assert h.registry.get(**K).status is HealthStatus.HEALTHY  # type: ignore[union-attr]
    assert h.kinds() == []


def test_rate_limit_default_without_retry_after() -> None:
    h = Harness(BreakerConfig(rate_limit_default_s=10.0))
    h.rec(R)
    h.clock.advance(9.99)
    assert not h.registry.is_available(**K)
    h.clock.advance(0.01)
    assert h.registry.is_available(**K)


def test_half_open_after_wait_is_lazy_and_dated_at_the_wait_end() -> None:
    h = Harness(BreakerConfig(jitter=0.0))
    h.rec(*[F] * 5)
    opened_at = h.clock()
    h.clock.advance(29.999)
    assert h.state() is BreakerState.OPEN
    h.clock.advance(100.0)  # nobody looked for a while
    assert h.state() is BreakerState.HALF_OPEN
    half = [t for t in h.transitions if t.kind is TransitionKind.HALF_OPEN]
    assert len(half) == 1
    assert half[0].at == pytest.approx(opened_at + 30.0 + 1_700_000_000.0)
    assert half[0].trace_id is None and half[0].before is BreakerState.OPEN
    assert half[0].after_status is HealthStatus.DEGRADED


def test_trials_from_before_half_open_are_ignored() -> None:
    h = Harness(BreakerConfig(jitter=0.0))
    h.rec(*[F] * 5)
    opened = h.clock()
    h.to_half_open()  # half-open began at opened + 30
    early = opened + 10.0
    h.rec(F, started_at=early)  # started while OPEN: counts in the window only
    h.rec(S, S, S, started_at=early)
    assert h.state() is BreakerState.HALF_OPEN
    h.rec(S, started_at=opened + 30.0)  # started exactly when half-open began: a trial
    h.rec(S)  # started_at None: treated as started now
    assert h.state() is BreakerState.HALF_OPEN
    h.rec(S, started_at=h.registry.now())
    assert h.state() is BreakerState.CLOSED


def test_one_failing_trial_reopens() -> None:
    h = Harness(BreakerConfig(jitter=0.0))
    h.rec(*[F] * 5)
    h.to_half_open()
    h.rec(S, S)
    h.rec(F, span_context=None)
    assert h.state() is BreakerState.OPEN
    assert h.kinds()[-1] is TransitionKind.HALF_OPEN_FAILED
    assert h.transitions[-1].before is BreakerState.HALF_OPEN
    assert h.transitions[-1].after is BreakerState.OPEN


def test_rate_limited_trial_is_not_a_trial() -> None:
    h = Harness(BreakerConfig(jitter=0.0, half_open_trials=1))
    h.rec(*[F] * 5)
    h.to_half_open()
    h.rec(R, retry_after_s=0.0)
    h.rec(N)
    assert h.state() is BreakerState.HALF_OPEN
    h.rec(S)
    assert h.state() is BreakerState.CLOSED


def test_window_reset_on_close() -> None:
    h = Harness(BreakerConfig(jitter=0.0))
    h.rec(*[F] * 5)
    recover(h)
    s = h.registry.get(**K)
    assert s is not None
    assert (s.calls_in_window, s.failures_in_window, s.consecutive_failures) == (0, 0, 0)
    assert s.success_rate is None and s.latency_p50_s is None
    assert s.status is HealthStatus.HEALTHY
    assert s.breaker_transitions == {
        BreakerState.CLOSED: 1,
        BreakerState.OPEN: 1,
        BreakerState.HALF_OPEN: 1,
    }


def test_permits_in_half_open_limit_and_expiry() -> None:
    h = Harness(BreakerConfig(jitter=0.0, permit_expiry_s=300.0))
    assert h.registry.try_acquire(**K) is not None  # unknown model: always
    h.rec(S)
    closed_permit = h.registry.try_acquire(**K)
    assert closed_permit is not None and not closed_permit.tracked
    closed_permit.release()  # no-op
    h.rec(*[F] * 5)
    assert h.registry.try_acquire(**K) is None  # OPEN
    assert not h.registry.is_available(**K)
    h.to_half_open()
    permits = [h.registry.try_acquire(**K) for _ in range(3)]
    assert all(p is not None and p.tracked for p in permits)
    assert h.registry.try_acquire(**K) is None
    assert not h.registry.is_available(**K)
    h.clock.advance(299.0)
    assert h.registry.try_acquire(**K) is None
    h.clock.advance(1.0)  # unreturned permits expire after 300 s
    assert h.registry.is_available(**K)
    again = h.registry.try_acquire(**K)
    assert again is not None and again.tracked


def test_release_and_recorded_outcome_return_permits() -> None:
    h = Harness(BreakerConfig(jitter=0.0))
    h.rec(*[F] * 5)
    h.to_half_open()
    p1, p2, p3 = (h.registry.try_acquire(**K) for _ in range(3))
    assert p1 is not None and p2 is not None and p3 is not None
    assert h.registry.try_acquire(**K) is None
    p3.release()  # the caller did not make the call
    assert not p3.tracked
    p3.release()  # idempotent
    p4 = h.registry.try_acquire(**K)
    assert p4 is not None
    h.rec(S)  # a trial: returns the oldest outstanding permit (p1); trials + outstanding still 3
    assert not p1.tracked and p2.tracked
    assert h.registry.try_acquire(**K) is None
    h.rec(S, S)
    assert h.state() is BreakerState.CLOSED
    still_tracked = [p.tracked for p in (p2, p4)]
    assert still_tracked == [False, False]  # the period ended


def test_outcome_of_a_call_started_before_half_open_returns_no_permit() -> None:
    h = Harness(BreakerConfig(jitter=0.0))
    h.rec(*[F] * 5)
    before = h.registry.now()
    h.to_half_open()
    p = h.registry.try_acquire(**K)
    assert p is not None
    h.rec(N, started_at=before)
    assert p.tracked
    h.rec(N)
    assert not p.tracked


def test_force_open_and_reset() -> None:
    h = Harness(BreakerConfig(jitter=0.0))
    h.rec(S)
    h.registry.force_open(**K, duration_s=5.0)
    assert h.state() is BreakerState.OPEN
    assert h.open_wait() == pytest.approx(5.0)
    assert h.kinds() == [TransitionKind.BREAKER_OPENED]
    h.registry.force_open(**K, duration_s=7.0)  # re-arming: no second transition
    assert h.kinds() == [TransitionKind.BREAKER_OPENED]
    h.registry.reset(**K)
    assert h.state() is BreakerState.CLOSED
    assert h.kinds() == [TransitionKind.BREAKER_OPENED, TransitionKind.RECOVERED]
    h.registry.force_open(**K)  # backoff wait, level 0 after reset
    assert h.open_wait() == pytest.approx(30.0)
    h.registry.reset(provider="openai", model="never-seen")  # unknown: nothing happens
    h.registry.force_open(provider="openai", model="new")
    new = h.registry.get(provider="openai", model="new")
    assert new is not None and new.status is HealthStatus.UNHEALTHY


def test_trace_ids_are_carried_on_transitions() -> None:
    h = Harness(BreakerConfig(jitter=0.0))
    ctx = SpanContext(
        trace_id=0x1234, span_id=0x99, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    unsampled = SpanContext(trace_id=0x77, span_id=0x78, is_remote=False, trace_flags=TraceFlags(0))
    h.rec(F, F, F, F, span_context=unsampled)
    h.rec(F, span_context=ctx, error_type="503", error_message="down sk-abcdefghijkl1234", status_code=503)
    first, opened = h.transitions
    assert (first.trace_id, first.span_id, first.sampled) == (0x77, 0x78, False)
    assert (opened.trace_id, opened.span_id, opened.sampled) == (0x1234, 0x99, True)
    assert opened.error is not None and opened.error.error_type == "503"
    assert opened.error.message is not None and "sk-abc" not in opened.error.message
    assert opened.state.last_error == opened.error
    h.to_half_open()
    h.rec(S, S, S)  # no span context
    assert h.transitions[-1].trace_id is None and h.transitions[-1].kind is TransitionKind.RECOVERED


def test_first_failure_once_per_incident_and_recovered_figures() -> None:
    h = Harness(BreakerConfig(jitter=0.0))
    h.rec(S)
    start = h.clock()
    h.rec(F, F)
    h.clock.advance(1.0)
    h.rec(F, F, F)  # opens
    h.rec(F)  # while OPEN: part of the incident
    assert h.kinds() == [TransitionKind.FIRST_FAILURE, TransitionKind.BREAKER_OPENED]
    assert h.transitions[0].before_status is HealthStatus.HEALTHY
    h.to_half_open()
    h.rec(F)  # failing trial
    h.to_half_open()
    h.rec(S, S, S)
    rec = h.transitions[-1]
    assert rec.kind is TransitionKind.RECOVERED
    assert rec.failed_calls_in_incident == 7
    assert rec.time_to_recover_s == pytest.approx(h.clock() - start)
    assert rec.before is BreakerState.HALF_OPEN and rec.after is BreakerState.CLOSED
    assert rec.after_status is HealthStatus.HEALTHY
    # A new incident gets a new first_failure.
    h.rec(F)
    assert h.kinds()[-1] is TransitionKind.FIRST_FAILURE
    assert h.kinds().count(TransitionKind.FIRST_FAILURE) == 2


def test_incident_without_open_ends_when_window_holds_no_failure() -> None:
    h = Harness(BreakerConfig(jitter=0.0, window_size=5))
    h.rec(S, S)
    h.rec(F)
    h.rec(S, S, S, S)  # the failure is still the 5th newest
    assert h.kinds() == [TransitionKind.FIRST_FAILURE]
    h.rec(F)  # same incident: no new first_failure
    assert h.kinds() == [TransitionKind.FIRST_FAILURE]
    h.clock.advance(2.0)
    h.rec(S, S, S, S, S)
    rec = h.transitions[-1]
    assert rec.kind is TransitionKind.RECOVERED
    assert rec.before is BreakerState.CLOSED and rec.after is BreakerState.CLOSED
    assert rec.failed_calls_in_incident == 2
    assert rec.time_to_recover_s == pytest.approx(2.0)
    h.rec(F)
    assert h.kinds().count(TransitionKind.FIRST_FAILURE) == 2


def test_time_window_incident_ends_by_ageing() -> None:
    h = Harness(BreakerConfig(jitter=0.0, window_kind="time", window_size=10))
    h.rec(S, F, S)
    h.clock.advance(10.0)
    s = h.registry.get(**K)  # a read advances the clock-driven state
    assert s is not None and s.failures_in_window == 0
    assert h.kinds() == [TransitionKind.FIRST_FAILURE, TransitionKind.RECOVERED]


def test_staleness() -> None:
    h = Harness(BreakerConfig(stale_after_s=600.0))
    h.rec(S)
    h.clock.advance(599.9)
    assert h.registry.get(**K).status is HealthStatus.HEALTHY  # type: ignore[union-attr]
    h.clock.advance(0.1)
    assert h.registry.get(**K).status is HealthStatus.STALE  # type: ignore[union-attr]
    h.rec(S)
    assert h.registry.get(**K).status is HealthStatus.HEALTHY  # type: ignore[union-attr]


def test_degraded_below_success_rate() -> None:
    h = Harness(BreakerConfig(minimum_calls=20, consecutive_failures=0))
    h.rec(*[S] * 19)
    h.rec(F)  # 95% exactly: not below
    assert h.registry.get(**K).status is HealthStatus.HEALTHY  # type: ignore[union-attr]
    h.rec(F)  # 18/20 = 90%
    assert h.registry.get(**K).status is HealthStatus.DEGRADED  # type: ignore[union-attr]


def test_breaker_level_cap_with_multiplier_one() -> None:
    b = Breaker(BreakerConfig(backoff_multiplier=1.0, jitter=0.0), FixedRandom(0.5))
    for _ in range(100):
        b._open(0.0, None)
    assert b.level == 1
    assert b.nominal_wait(b.level) == 30.0
