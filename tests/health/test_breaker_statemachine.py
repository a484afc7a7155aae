"""The breaker and the per-model state machine against a small, obviously correct reference model, step
by step: through the registry (permits included), and ``ModelState`` alone (status and staleness).

The reference keeps the full outcome history and recomputes everything from it (window = last N
outcomes since the last close, failure rate by counting, backoff decay computed from the close time)
instead of the registry's running totals and lazy, incremental clock steps.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from otel_model_health.health.breaker import Permit
from otel_model_health.health.model_state import ModelState, Step
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import BreakerConfig, CallResult, HealthTransition
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import ManualClock

CONFIG = BreakerConfig(
    window_size=5,
    failure_rate_threshold=0.5,
    minimum_calls=3,
    consecutive_failures=3,
    open_wait_s=10.0,
    max_open_wait_s=40.0,
    backoff_multiplier=2.0,
    jitter=0.1,
    half_open_trials=2,
    permit_expiry_s=25.0,
    stale_after_s=0.0,
)
KEY = ModelKey(provider="p", model="m")
SEED = 1234


@dataclass(eq=False)  # identity: two permits handed out at the same time are still two
class RefPermit:
    expires_at: float


@dataclass
class Reference:
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    state: str = "closed"
    history: list[bool] = field(default_factory=list)  # successes/failures since the last close
    slow_history: list[bool] = field(default_factory=list)  # ... and which of them were slow
    slow: bool = False  # degraded by slow calls
    consecutive: int = 0
    open_until: float = 0.0
    half_open_since: float = 0.0
    level: int = 0
    closed_at: float = 0.0
    trials: int = 0
    permits: list[RefPermit] = field(default_factory=list)
    incident: bool = False
    incident_opened: bool = False
    emitted: list[str] = field(default_factory=list)

    @staticmethod
    def wait(level: int) -> float:
        return min(CONFIG.open_wait_s * 2.0**level, CONFIG.max_open_wait_s)

    def effective_level(self, now: float) -> int:
        level, t = self.level, self.closed_at
        while level and now - t >= 2 * self.wait(level - 1):
            t += 2 * self.wait(level - 1)
            level -= 1
        return level

    def open(self, now: float) -> None:
        level = self.effective_level(now) if self.state == "closed" else self.level
        nominal = self.wait(level)
        self.level = min(level + 1, 3)  # 10, 20, 40 (cap) → one past the first capped level
        wait = nominal * (1.0 + CONFIG.jitter * (2.0 * self.rng.random() - 1.0))
        self.state, self.open_until, self.trials, self.permits = "open", now + wait, 0, []
        self.incident_opened = True

    def close(self, now: float) -> None:
        self.state, self.history, self.consecutive, self.trials, self.permits = "closed", [], 0, 0, []
        self.slow_history = []
        self.closed_at = now

    def advance(self, now: float) -> None:
        if self.state == "open" and now >= self.open_until:
            self.state, self.half_open_since, self.trials, self.permits = "half_open", self.open_until, 0, []
            self.emitted.append("half_open")
        if self.state == "closed":
            # Materialise the decay so far (the registry decays lazily; both must agree at opening).
            level, t = self.level, self.closed_at
            while level and now - t >= 2 * self.wait(level - 1):
                t += 2 * self.wait(level - 1)
                level -= 1
            self.level, self.closed_at = level, t
        self.permits = [p for p in self.permits if p.expires_at > now]

    def is_trial(self, started_at: float | None) -> bool:
        return self.state == "half_open" and (started_at is None or started_at >= self.half_open_since)

    def record(self, outcome: Outcome, started_at: float | None, now: float, slow: bool = False) -> None:
        self.advance(now)
        trial = self.is_trial(started_at)
        if trial and self.permits:
            self.permits.pop(0)
        if outcome in (Outcome.FAILURE, Outcome.SUCCESS):
            self.slow_history.append(slow)
        if outcome is Outcome.FAILURE:
            self.history.append(False)
            self.consecutive += 1
            if not self.incident:
                self.incident, self.incident_opened = True, False
                self.emitted.append("first_failure")
            window = self.history[-CONFIG.window_size :]
            if self.state == "closed":
                failures = window.count(False)
                if self.consecutive >= CONFIG.consecutive_failures or (
                    len(window) >= CONFIG.minimum_calls and failures / len(window) >= 0.5
                ):
                    self.open(now)
                    self.emitted.append("breaker_opened")
            elif trial:
                self.open(now)
                self.emitted.append("half_open_failed")
        elif outcome is Outcome.SUCCESS:
            self.history.append(True)
            self.consecutive = 0
            if trial:
                self.trials += 1
                if self.trials == CONFIG.half_open_trials:
                    self.close(now)
                    self.incident = False
                    self.emitted.append("recovered")
            elif (
                self.incident
                and not self.incident_opened
                and self.state == "closed"
                and False not in self.history[-CONFIG.window_size :]
            ):
                self.incident = False
                self.emitted.append("recovered")
        if outcome in (Outcome.FAILURE, Outcome.SUCCESS):
            # Slow calls: degraded while the slow share of the window (since the last close) is at or over
            # the threshold, with at least minimum_calls calls.
            window = self.slow_history[-STATUS_CONFIG.window_size :]
            degraded = len(window) >= STATUS_CONFIG.minimum_calls and (
                window.count(True) / len(window) >= STATUS_CONFIG.slow_call_rate_threshold
            )
            if degraded != self.slow:
                self.slow = degraded
                self.emitted.append("slow_calls" if degraded else "slow_calls_cleared")

    def acquire(self, now: float) -> bool:
        self.advance(now)
        if self.state == "open":
            return False
        if self.state == "closed":
            return True
        if self.trials + len(self.permits) < CONFIG.half_open_trials:
            self.permits.append(RefPermit(now + CONFIG.permit_expiry_s))
            return True
        return False


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(100.0)
        self.registry = HealthRegistry(config=CONFIG, clock=self.clock, random=random.Random(SEED))
        self.seen: list[HealthTransition] = []
        self.registry.subscribe(self.seen.append)
        self.ref = Reference()
        self.held: list[tuple[Permit, RefPermit | None]] = []

    @rule(
        outcome=st.sampled_from(list(Outcome)),
        started=st.one_of(
            st.none(),
            st.just("half_open_began"),
            st.sampled_from([0.0, 1.0, 5.0, 10.0, 30.0]),
            st.floats(min_value=0.0, max_value=60.0),
        ),
    )
    def record(self, outcome: Outcome, started: float | str | None) -> None:
        if started == "half_open_began":  # the boundary: started exactly when half-open began
            started_at: float | None = self.ref.half_open_since
        elif isinstance(started, float):
            started_at = self.clock() - started
        else:
            started_at = None
        self.registry.record(KEY, outcome, started_at=started_at, retry_after_s=0.0)
        self.ref.record(outcome, started_at, self.clock())

    @rule(dt=st.sampled_from([0.0, 0.25, 1.0, 5.0, 9.0, 10.0, 11.5, 25.0, 60.0, 200.0]))
    def tick(self, dt: float) -> None:
        self.clock.advance(dt)

    @rule()
    def read(self) -> None:
        self.registry.get(provider="p", model="m")
        self.ref.advance(self.clock())

    @rule()
    def acquire(self) -> None:
        permit = self.registry.try_acquire(provider="p", model="m")
        expected = self.ref.acquire(self.clock())
        assert (permit is not None) == expected
        if permit is not None and permit.tracked:
            self.held.append((permit, self.ref.permits[-1]))

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        permit, ref_permit = self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))
        permit.release()
        if ref_permit in self.ref.permits:
            self.ref.permits.remove(ref_permit)

    @invariant()
    def agrees(self) -> None:
        kinds = [t.kind.value for t in self.seen]
        assert kinds == self.ref.emitted
        state = self.registry.get(provider="p", model="m")
        self.ref.advance(self.clock())
        assert [t.kind.value for t in self.seen] == self.ref.emitted
        if state is not None:
            assert state.breaker_state.value == self.ref.state
            assert state.consecutive_failures == self.ref.consecutive
            window = self.ref.history[-CONFIG.window_size :]
            assert state.calls_in_window == len(window)
            assert state.failures_in_window == window.count(False)
        for permit, ref_permit in self.held:
            assert permit.tracked == any(p is ref_permit for p in self.ref.permits)


BreakerMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBreakerMachine = BreakerMachine.TestCase


# --- the state machine alone: ModelState against the reference, status and staleness included -----------
# The reference's rules, with staleness and a rate-limit wait turned on.
STATUS_CONFIG = dataclasses.replace(
    CONFIG,
    degraded_below=0.95,
    stale_after_s=30.0,
    rate_limit_default_s=7.0,
    slow_call_duration_s=10.0,
    slow_first_chunk_s=2.0,
    slow_call_rate_threshold=0.6,
)


@dataclass
class StatusReference(Reference):
    last_outcome_at: float | None = None
    rate_limited_until: float = float("-inf")

    def record_with_status(
        self,
        outcome: Outcome,
        started_at: float | None,
        retry_after_s: float | None,
        now: float,
        slow: bool = False,
    ) -> None:
        self.record(outcome, started_at, now, slow)
        self.last_outcome_at = now
        if outcome is Outcome.RATE_LIMITED:
            wait = STATUS_CONFIG.rate_limit_default_s if retry_after_s is None else retry_after_s
            self.rate_limited_until = now + wait

    def status(self, now: float) -> str:
        """docs/health-model.md, "Status", as written."""
        if self.state == "open":
            return "unhealthy"
        if self.last_outcome_at is None:
            return "unknown"
        if now - self.last_outcome_at >= STATUS_CONFIG.stale_after_s:
            return "stale"
        if self.state == "half_open" or now < self.rate_limited_until or self.slow:
            return "degraded"
        window = self.history[-STATUS_CONFIG.window_size :]
        if window and window.count(True) / len(window) < STATUS_CONFIG.degraded_below:
            return "degraded"
        return "healthy"


class ModelStateMachine(RuleBasedStateMachine):
    """``ModelState`` driven directly (no registry, no lock), with a manual clock."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 100.0
        self.model = ModelState(KEY, STATUS_CONFIG, random.Random(SEED), self.now)
        self.steps: list[Step] = []
        self.ref = StatusReference()

    @rule(
        outcome=st.sampled_from([Outcome.SUCCESS, Outcome.FAILURE, Outcome.RATE_LIMITED, Outcome.NEUTRAL]),
        started=st.one_of(st.none(), st.just("half_open_began"), st.floats(min_value=0.0, max_value=60.0)),
        retry_after_s=st.one_of(st.none(), st.sampled_from([0.0, 3.0, 50.0])),
        latency_s=st.sampled_from([None, 0.5, 9.99, 10.0, 30.0]),
        first_chunk_s=st.sampled_from([None, None, 0.1, 2.0, 5.0]),
    )
    def record(
        self,
        outcome: Outcome,
        started: float | str | None,
        retry_after_s: float | None,
        latency_s: float | None,
        first_chunk_s: float | None,
    ) -> None:
        if started == "half_open_began":
            started_at: float | None = self.ref.half_open_since
        elif isinstance(started, float):
            started_at = self.now - started
        else:
            started_at = None
        result = CallResult(
            outcome,
            started_at=started_at,
            retry_after_s=retry_after_s,
            latency_s=latency_s,
            first_chunk_s=first_chunk_s,
        )
        self.model.record(result, self.now, self.steps.append)
        # docs/health-model.md, "Slow calls": a stream by its first chunk, any other call by its duration.
        if first_chunk_s is not None:
            slow = first_chunk_s >= STATUS_CONFIG.slow_first_chunk_s
        else:
            slow = latency_s is not None and latency_s >= STATUS_CONFIG.slow_call_duration_s
        self.ref.record_with_status(outcome, started_at, retry_after_s, self.now, slow)

    @rule(dt=st.sampled_from([0.0, 0.25, 1.0, 5.0, 9.0, 10.0, 11.5, 25.0, 31.0, 60.0, 200.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @invariant()
    def agrees(self) -> None:
        self.model.advance(self.now, self.steps.append)
        self.ref.advance(self.now)
        assert [s.kind.value for s in self.steps] == self.ref.emitted
        snapshot = self.model.snapshot(self.now, lambda t: t)
        assert snapshot.breaker_state.value == self.ref.state
        assert snapshot.consecutive_failures == self.ref.consecutive
        window = self.ref.history[-STATUS_CONFIG.window_size :]
        assert (snapshot.calls_in_window, snapshot.failures_in_window) == (len(window), window.count(False))
        assert snapshot.status.value == self.ref.status(self.now)


ModelStateMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestModelStateMachine = ModelStateMachine.TestCase
