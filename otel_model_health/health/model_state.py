"""The health of one model as a state machine: window, breaker, incident, rate limit and status.

``ModelState`` decides; it never locks, reads a clock or does I/O. The registry (or a fleet store)
serialises access, passes ``now`` in, and turns each ``Step`` it is handed (through ``emit``, at the
moment the step happens, so a snapshot taken then shows the state of that moment) into a transition for
its listeners. Every decision about one model lives here, so it is tested directly (as ``Breaker`` is)
and a store that keeps state elsewhere drives the very same rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeAlias

from .. import semconv
from ..keys import ModelKey
from ..outcomes import MODEL_NOT_FOUND, Classification, Outcome, not_the_models_failure
from ..redact import MAX_MESSAGE_LENGTH, scrub
from .breaker import CLOSED, HALF_OPEN, OPEN, Breaker, RandomSource
from .recent import bucket_end, close_buckets, new_ring
from .types import (
    BreakerConfig,
    BreakerState,
    CallResult,
    ErrorInfo,
    HealthStatus,
    ModelHealthState,
    TransitionKind,
)
from .window import percentile

if TYPE_CHECKING:
    from ..slo.tracker import KeySlos

# Outcome → index into a state's per-operation counts.
OUTCOMES: Final = (
    Outcome.SUCCESS,
    Outcome.FAILURE,
    Outcome.RATE_LIMITED,
    Outcome.NEUTRAL,
    Outcome.UNKNOWN_MODEL,
    Outcome.AUTH_ERROR,
    Outcome.REJECTED,
)
OUTCOME_INDEX: Final[dict[Outcome, int]] = {o: i for i, o in enumerate(OUTCOMES)}
# Module constants: an enum member read through its class (`Outcome.SUCCESS`) costs a lookup per record.
_SUCCESS: Final = Outcome.SUCCESS
_FAILURE: Final = Outcome.FAILURE
_RATE_LIMITED: Final = Outcome.RATE_LIMITED
_I_SUCCESS: Final = 0
_I_FAILURE: Final = 1
_MAX_RAW_MESSAGE: Final = 2 * MAX_MESSAGE_LENGTH  # scrub() reads at most this much

# Distinct `model_health.operation` values counted per key; more are folded into one (cardinality).
MAX_OPERATIONS_PER_KEY: Final = 8
OTHER_OPERATION: Final = semconv.OTHER_VALUE

HEALTHY: Final = HealthStatus.HEALTHY
DEGRADED: Final = HealthStatus.DEGRADED
UNHEALTHY: Final = HealthStatus.UNHEALTHY
STALE: Final = HealthStatus.STALE
UNKNOWN: Final = HealthStatus.UNKNOWN


class Step(NamedTuple):
    """One transition a ``ModelState`` decided; the registry adds the snapshot, the span and the time."""

    kind: TransitionKind
    before: BreakerState
    after: BreakerState
    before_status: HealthStatus
    at: float | None = None  # when it happened, if not now (half-open began when the wait elapsed)
    time_to_recover_s: float | None = None
    failed_calls_in_incident: int | None = None


Emit: TypeAlias = Callable[[Step], None]

# Outcomes that are not the model's health: counted, never judged (docs/outcomes.md). The caller's
# mistakes, and a refusal recorded by hand (the instrumentation never records its own refusals here).
_CALLERS_MISTAKES: Final = frozenset({Outcome.UNKNOWN_MODEL, Outcome.AUTH_ERROR, Outcome.REJECTED})


def callers_mistake(result: CallResult, state: ModelState | None) -> Outcome | None:
    """The outcome to count when ``result`` is the caller's mistake rather than the model's health, else
    None (``outcomes.not_the_models_failure`` says when a 404 is)."""
    outcome = result.outcome
    if outcome in _CALLERS_MISTAKES:
        return outcome
    if result.error_type != MODEL_NOT_FOUND:  # checked first: no allocation on other failures
        return None
    verdict = not_the_models_failure(
        Classification(outcome, result.error_type),
        health_operation=result.health_operation,
        has_succeeded=lambda: state is not None and state.has_succeeded(),
    )
    return verdict.outcome if verdict.outcome is Outcome.UNKNOWN_MODEL else None


class ModelState:
    """Window, breaker, incident and status of one ``ModelKey``. Not thread-safe by design."""

    __slots__ = (
        "breaker",
        "config",
        "err_at",
        "err_latency",
        "err_message",
        "err_scrubbed",
        "err_status",
        "err_type",
        "first_seen",
        "in_incident",
        "incident_failed",
        "incident_opened",
        "incident_start",
        "key",
        "last_failure",
        "last_operation",
        "last_outcome",
        "last_outcome_at",
        "rate_limited_until",
        "recent",
        "recent_bad",
        "recent_edge",
        "recent_good",
        "slo",
        "slow_call_s",
        "slow_degraded",
        "slow_first_chunk_s",
        "timeline",
        "totals",
    )

    def __init__(self, key: ModelKey, config: BreakerConfig, random: RandomSource, now: float) -> None:
        self.key = key
        self.config = config
        self.breaker = Breaker(config, random)
        self.totals: dict[str, list[int]] = {}  # operation → counts indexed like OUTCOMES
        self.last_outcome: Outcome | None = None
        self.last_outcome_at: float | None = None
        self.last_operation = semconv.OPERATION_INFERENCE
        self.last_failure: float | None = None
        self.err_type: str | None = None
        self.err_message: str | None = None  # kept raw (bounded): scrubbing is off the record path ...
        self.err_scrubbed: str | None = None  # ... and done once, by the first read of that message
        self.err_status: int | None = None
        self.err_latency: float | None = None
        self.err_at: float | None = None  # None: no error seen yet
        self.rate_limited_until = -math.inf
        self.first_seen = now
        self.in_incident = False
        self.incident_opened = False  # the breaker opened during this incident
        self.incident_start = 0.0
        self.incident_failed = 0
        self.slo: KeySlos | None = None  # the key's SLO series (the registry's), None when none match
        # The status page's recent past (recent.py), always on: per-bucket counts, the totals at the
        # current bucket's start and its end (a record compares ``now`` with it); the incident steps.
        self.recent = new_ring()
        self.recent_good = self.recent_bad = 0
        self.recent_edge = bucket_end(now)
        self.timeline: tuple[Any, ...] | None = None  # flat: see recent.note
        # Slow calls: thresholds (inf: off) and whether the window's slow share has the model degraded.
        self.slow_call_s = config.slow_call_duration_s or math.inf
        self.slow_first_chunk_s = config.slow_first_chunk_s or math.inf
        self.slow_degraded = False

    # --- outcomes -------------------------------------------------------------------------------
    def record(self, result: CallResult, now: float, emit: Emit) -> None:
        """Apply one call's result; ``emit`` gets each transition it causes."""
        outcome = result.outcome
        breaker = self.breaker
        state = breaker.state
        if now >= self.recent_edge:  # a bucket ended: close it before this call counts
            close_buckets(self, now)
        # ``_is_slow`` inlined (a method call is a tenth of this record); a slow call in the window, or
        # this one, may cross the slow-call threshold, so neither shortcut applies then.
        first_chunk = result.first_chunk_s
        if first_chunk is None:
            latency = result.latency_s
            quick = (latency is None or latency < self.slow_call_s) and not breaker.window.slow
        else:
            quick = first_chunk < self.slow_first_chunk_s and not breaker.window.slow
        # Two shortcuts skip the clock step and the status computation of the general path, for the
        # outcomes that can change nothing (tests/health/test_fast_paths.py proves them equal to it):
        if outcome is _SUCCESS and state is CLOSED and quick and not breaker.level and not self.in_incident:
            # the common case: a success of a model with nothing going on (``_count`` inlined);
            operation = result.health_operation
            counts = self.totals.get(operation)
            if counts is None:
                counts = self.totals_for(operation)
            counts[_I_SUCCESS] += 1
            self.last_outcome = _SUCCESS
            self.last_outcome_at = now
            self.last_operation = operation
            breaker.on_outcome(True, result.latency_s, result.started_at, now)
        elif (
            outcome is _FAILURE and state is OPEN and quick and now < breaker.open_until and self.in_incident
        ):
            # the steady state of an outage: calls still fail while the breaker waits.
            self._count(result.health_operation, _I_FAILURE, now)
            self._keep_error(result, now)
            self.last_failure = now
            self.incident_failed += 1
            breaker.on_outcome(False, result.latency_s, result.started_at, now)
        else:
            self.record_general(result, now, emit)

    def record_general(self, result: CallResult, now: float, emit: Emit) -> None:
        """``record`` without its shortcut: the path every outcome may take (tests compare the two)."""
        outcome = result.outcome
        breaker = self.breaker
        self.advance(now, emit)
        before_state = breaker.state
        before_status = self.status(now)
        self._count(result.health_operation, OUTCOME_INDEX[outcome], now)
        if outcome is _FAILURE or outcome is _RATE_LIMITED:
            self._keep_error(result, now)
        if outcome is _FAILURE:
            self.last_failure = now
            kind = breaker.on_outcome(False, result.latency_s, result.started_at, now)
            if self._is_slow(result):
                breaker.window.mark_slow(now)
            self.incident_failed += 1
            if not self.in_incident:
                self._start_incident(now, failed=1)
                emit(Step(TransitionKind.FIRST_FAILURE, before_state, before_state, before_status))
            if kind is not None:  # BREAKER_OPENED or HALF_OPEN_FAILED
                self.incident_opened = True
                emit(Step(kind, before_state, breaker.state, before_status))
            self._check_slow(now, emit, before_state, before_status)
        elif outcome is _SUCCESS:
            kind = breaker.on_outcome(True, result.latency_s, result.started_at, now)
            if self._is_slow(result):
                breaker.window.mark_slow(now)
            if kind is TransitionKind.RECOVERED or self._incident_cleared():
                emit(self._recover(before_state, before_status, now))
            self._check_slow(now, emit, before_state, before_status)
        else:
            if outcome is _RATE_LIMITED:
                wait = result.retry_after_s
                # The newest Retry-After wins: it is the provider's latest word.
                self.rate_limited_until = now + max(
                    0.0, self.config.rate_limit_default_s if wait is None else wait
                )
            breaker.on_other(result.started_at)

    def count_only(
        self, outcome: Outcome, operation: str, started_at: float | None, now: float, emit: Emit
    ) -> None:
        """An outcome that is not the model's health (the caller's mistake): counted, judged not at all.
        A half-open trial permit still returns: the call ended."""
        self.totals_for(operation)[OUTCOME_INDEX[outcome]] += 1
        self.advance(now, emit)
        self.breaker.on_other(started_at)

    def good_and_bad(self) -> tuple[int, int]:
        """Successes and failures since the key was first seen, all operations."""
        totals = self.totals.values()
        return sum(c[_I_SUCCESS] for c in totals), sum(c[_I_FAILURE] for c in totals)

    # --- slow calls -----------------------------------------------------------------------------
    def _is_slow(self, result: CallResult) -> bool:
        """At or over its threshold: a stream's first chunk, else the whole call."""
        first_chunk = result.first_chunk_s
        if first_chunk is not None:
            return first_chunk >= self.slow_first_chunk_s
        latency = result.latency_s
        return latency is not None and latency >= self.slow_call_s

    def _check_slow(
        self, now: float, emit: Emit, before_state: BreakerState, before_status: HealthStatus
    ) -> None:
        """Degraded while the window's slow share is at or over the threshold (with minimum_calls);
        opened as well when ``slow_calls_open`` opts in."""
        window = self.breaker.window
        calls = window.successes + window.failures
        config = self.config
        slow = bool(
            calls and calls >= config.minimum_calls and window.slow / calls >= config.slow_call_rate_threshold
        )
        if slow is self.slow_degraded:
            return
        self.slow_degraded = slow
        kind = TransitionKind.SLOW_CALLS if slow else TransitionKind.SLOW_CALLS_CLEARED
        emit(Step(kind, before_state, self.breaker.state, before_status))
        if slow and config.slow_calls_open and self.breaker.state is CLOSED:
            self.breaker.force_open(now, None)
            if not self.in_incident:
                self._start_incident(now, failed=0)
            self.incident_opened = True
            emit(Step(TransitionKind.BREAKER_OPENED, before_state, OPEN, before_status))

    def has_succeeded(self) -> bool:
        return any(counts[_I_SUCCESS] for counts in self.totals.values())

    # --- time ----------------------------------------------------------------------------------
    def advance(self, now: float, emit: Emit) -> None:
        """Apply what the clock made due: OPEN → HALF_OPEN, an incident whose failures aged out."""
        breaker = self.breaker
        if breaker.advance(now) is TransitionKind.HALF_OPEN:
            emit(Step(TransitionKind.HALF_OPEN, OPEN, HALF_OPEN, UNHEALTHY, at=breaker.half_open_since))
        elif self._incident_cleared():  # a time window aged the incident's failures out
            emit(self._recover(CLOSED, self.status(now), now))
        window = breaker.window
        if (self.slow_degraded or window.slow) and self.config.window_kind == "time":
            # a time window ages calls out: the slow share may have crossed the threshold either way
            self._check_slow(now, emit, breaker.state, self.status(now))

    def status(self, now: float) -> HealthStatus:
        breaker = self.breaker
        state = breaker.state
        if state is OPEN:
            return UNHEALTHY
        last = self.last_outcome_at
        if last is None:
            return UNKNOWN
        stale_after = self.config.stale_after_s
        if stale_after and now - last >= stale_after:
            return STALE
        if state is HALF_OPEN or now < self.rate_limited_until or self.slow_degraded:
            return DEGRADED
        window = breaker.window
        calls = window.successes + window.failures
        if calls and window.successes / calls < self.config.degraded_below:
            return DEGRADED
        return HEALTHY

    # --- routing --------------------------------------------------------------------------------
    def available(self, now: float) -> bool:
        """False when OPEN, rate-limited, or HALF_OPEN without a free slot. Call ``advance`` first."""
        breaker = self.breaker
        if now < self.rate_limited_until or breaker.state is OPEN:
            return False
        return breaker.state is CLOSED or breaker.permit_available(now)

    # --- manual control -------------------------------------------------------------------------
    def force_open(self, now: float, duration_s: float | None, emit: Emit) -> None:
        """Open now (``duration_s``, or the backoff wait); starts an incident."""
        self.advance(now, emit)
        before_state = self.breaker.state
        before_status = self.status(now)
        if not self.breaker.force_open(now, duration_s):
            return
        if not self.in_incident:
            self._start_incident(now, failed=0)
        self.incident_opened = True
        emit(Step(TransitionKind.BREAKER_OPENED, before_state, OPEN, before_status))

    def reset(self, now: float, emit: Emit) -> None:
        """Back to CLOSED, empty window, backoff level 0, no rate limit."""
        self.advance(now, emit)
        before_state = self.breaker.state
        before_status = self.status(now)
        changed = self.breaker.reset(now)
        self.rate_limited_until = -math.inf
        if changed or self.in_incident:
            emit(self._recover(before_state, before_status, now))
        self._check_slow(now, emit, before_state, before_status)

    # --- a fleet's decisions -----------------------------------------------------------------------
    def record_remote(self, result: CallResult, now: float, emit: Emit) -> None:
        """Another process's outcome (a fleet store): counted and judged as ours are, a trial included,
        but it returns none of this process's half-open permits: those stand for calls made here."""
        breaker = self.breaker
        period = breaker.period
        mine = breaker.permits
        breaker.permits = []
        try:
            self.record(result, now, emit)
        finally:
            if breaker.state is HALF_OPEN and breaker.period == period:
                breaker.permits = mine + breaker.permits
            else:  # the period ended: as ``_drop_permits`` would have done
                for permit in mine:
                    permit._owner = None

    def adopt(self, kind: TransitionKind, open_until: float, level: int, now: float, emit: Emit) -> None:
        """Follow a transition another process won (a fleet store, docs/fleet.md): the breaker and the
        incident take its result, and each change that makes here is emitted as a step. The rules that
        decided it are this class's own, run in the winning process."""
        self.advance(now, emit)
        breaker = self.breaker
        before_state = breaker.state
        before_status = self.status(now)
        if kind is TransitionKind.FIRST_FAILURE:
            # Only with a failure of its own in the window: an incident without one would "clear" at once
            # (``_incident_cleared``) and this process would propose a recovery nobody saw.
            if not self.in_incident and breaker.window.failures:
                self._start_incident(now, failed=0)
                emit(Step(kind, before_state, before_state, before_status))
        elif kind is TransitionKind.BREAKER_OPENED or kind is TransitionKind.HALF_OPEN_FAILED:
            if not self.in_incident:
                self._start_incident(now, failed=0)
            self.incident_opened = True
            if breaker.follow_open(open_until, level):
                emit(Step(kind, before_state, OPEN, before_status))
        elif kind is TransitionKind.RECOVERED and (breaker.follow_close(now) or self.in_incident):
            emit(self._recover(before_state, before_status, now))

    # --- reading ---------------------------------------------------------------------------------
    def snapshot(self, now: float, wall: Callable[[float], float]) -> ModelHealthState:
        """An immutable view; ``wall`` maps the state's clock to epoch seconds."""
        breaker = self.breaker
        window = breaker.window
        calls = window.successes + window.failures
        latencies = sorted(window.latencies(now))
        totals: dict[tuple[str, Outcome], int] = {}
        for op, counts in self.totals.items():
            for i, n in enumerate(counts):
                if n:
                    totals[(op, OUTCOMES[i])] = n
        last_error = None
        if self.err_at is not None:
            if self.err_message and self.err_scrubbed is None:
                self.err_scrubbed = scrub(self.err_message)
            last_error = ErrorInfo(
                error_type=self.err_type,
                message=self.err_scrubbed if self.err_message else None,
                status_code=self.err_status,
                latency_s=self.err_latency,
                at=wall(self.err_at),
            )
        entered = breaker.entered
        return ModelHealthState(
            key=self.key,
            status=self.status(now),
            breaker_state=breaker.state,
            success_rate=(window.successes / calls) if calls else None,
            calls_in_window=calls,
            failures_in_window=window.failures,
            consecutive_failures=breaker.consecutive,
            outcome_totals=totals,
            breaker_transitions={CLOSED: entered[0], OPEN: entered[1], HALF_OPEN: entered[2]},
            latency_p50_s=percentile(latencies, 0.5),
            latency_p95_s=percentile(latencies, 0.95),
            last_outcome=self.last_outcome,
            last_outcome_at=None if self.last_outcome_at is None else wall(self.last_outcome_at),
            last_error=last_error,
            last_failure_at=None if self.last_failure is None else wall(self.last_failure),
            open_until=wall(breaker.open_until) if breaker.state is OPEN else None,
            rate_limited_until=wall(self.rate_limited_until) if self.rate_limited_until > now else None,
            first_seen_at=wall(self.first_seen),
            as_of=wall(now),
            slow_calls_in_window=window.slow,
        )

    # --- internals ------------------------------------------------------------------------------
    def totals_for(self, operation: str) -> list[int]:
        counts = self.totals.get(operation)
        if counts is None:
            operation = str(operation)  # a caller may pass a non-str
            if len(self.totals) >= MAX_OPERATIONS_PER_KEY and operation not in self.totals:
                operation = OTHER_OPERATION
            counts = self.totals.get(operation)
            if counts is None:
                counts = self.totals[operation] = [0] * len(OUTCOMES)
        return counts

    def _count(self, operation: str, index: int, now: float) -> None:
        self.totals_for(operation)[index] += 1
        self.last_outcome = OUTCOMES[index]
        self.last_outcome_at = now
        self.last_operation = operation

    def _keep_error(self, result: CallResult, now: float) -> None:
        self.err_type = result.error_type
        message = result.error_message
        self.err_message = str(message)[:_MAX_RAW_MESSAGE] if message else None
        self.err_scrubbed = None
        self.err_status = result.status_code
        self.err_latency = result.latency_s
        self.err_at = now

    def _start_incident(self, now: float, *, failed: int) -> None:
        self.in_incident = True
        self.incident_opened = False
        self.incident_start = now
        self.incident_failed = failed

    def _incident_cleared(self) -> bool:
        """An incident whose breaker never opened ends when its window holds no failure."""
        return (
            self.in_incident
            and not self.incident_opened
            and self.breaker.state is CLOSED
            and not self.breaker.window.failures
        )

    def _recover(self, before_state: BreakerState, before_status: HealthStatus, now: float) -> Step:
        in_incident = self.in_incident
        step = Step(
            TransitionKind.RECOVERED,
            before_state,
            self.breaker.state,
            before_status,
            time_to_recover_s=(now - self.incident_start) if in_incident else None,
            failed_calls_in_incident=self.incident_failed if in_incident else 0,
        )
        self.in_incident = False
        self.incident_opened = False
        self.incident_failed = 0
        return step
