"""HealthRegistry: per-ModelKey windows, breakers, incidents and provider outages.

Concurrency model: one registry lock, held only for O(1) work per key (a record, a lazy clock step, a
snapshot of one entry); never across user code. Transitions are built under the lock and appended,
still under the lock, to one pending queue, so their order is the order in which they happened.
Whoever finds the queue non-empty after releasing the lock drains it under a separate, non-blocking
dispatch lock: listeners run outside the registry lock, one transition at a time, in order. A listener
that calls ``record()`` only enqueues (the dispatch lock is taken), and the outer drain delivers it next:
no deadlock, no re-ordering. Consequence: a ``record()`` may return before its transitions reached the
listeners when another thread is draining at that moment.

Times inside are the registry clock (monotonic seconds); snapshots and transitions carry wall-clock
epoch seconds, converted at snapshot time so ``record()`` never reads the wall clock.
"""

from __future__ import annotations

import math
import os
import random as _random
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

from opentelemetry.trace import SpanContext

from .. import semconv
from .._internal import report_internal_error
from ..keys import DIRECT_GATEWAY, ModelKey
from ..outcomes import MODEL_NOT_FOUND, Outcome
from ..redact import MAX_MESSAGE_LENGTH, scrub
from .breaker import CLOSED, HALF_OPEN, OPEN, Breaker, Permit, RandomSource
from .types import (
    BreakerConfig,
    BreakerState,
    CallResult,
    ErrorInfo,
    HealthListener,
    HealthStatus,
    HealthTransition,
    ModelHealthState,
    TransitionKind,
)
from .window import percentile

# Outcome → index into an entry's per-operation counts.
_OUTCOMES: Final = (
    Outcome.SUCCESS,
    Outcome.FAILURE,
    Outcome.RATE_LIMITED,
    Outcome.NEUTRAL,
    Outcome.UNKNOWN_MODEL,
    Outcome.AUTH_ERROR,
)
_OUTCOME_INDEX: Final[dict[Outcome, int]] = {o: i for i, o in enumerate(_OUTCOMES)}
# Module constants: an enum member read through its class (`Outcome.SUCCESS`) costs a lookup per record.
_SUCCESS_OUTCOME: Final = Outcome.SUCCESS
_FAILURE_OUTCOME: Final = Outcome.FAILURE
_I_SUCCESS: Final = 0
_I_FAILURE: Final = 1
_I_RATE_LIMITED: Final = 2
# Outcomes that are the caller's mistake, not the model's health: counted, never judged (docs/outcomes.md).
_CALLERS_MISTAKES: Final = frozenset({Outcome.UNKNOWN_MODEL, Outcome.AUTH_ERROR})
# Caller's mistakes of models the registry does not track are counted per (provider, gateway, operation,
# outcome), under the model `_OTHER`: made-up model names must not become keys, series or /health rows.
MAX_UNATTRIBUTED: Final = 256
_MAX_RAW_MESSAGE: Final = 2 * MAX_MESSAGE_LENGTH  # scrub() reads at most this much

# Distinct `model_health.operation` values tracked per key; more are folded into one (cardinality).
MAX_OPERATIONS_PER_KEY: Final = 8
OTHER_OPERATION: Final = semconv.OTHER_VALUE

_HEALTHY: Final = HealthStatus.HEALTHY
_DEGRADED: Final = HealthStatus.DEGRADED
_UNHEALTHY: Final = HealthStatus.UNHEALTHY
_STALE: Final = HealthStatus.STALE
_UNKNOWN: Final = HealthStatus.UNKNOWN


class _Provider:
    """The models of one provider, for outage detection."""

    __slots__ = ("entries", "name", "outage")

    def __init__(self, name: str) -> None:
        self.name = name
        self.entries: dict[ModelKey, _Entry] = {}
        self.outage = False


class _Entry:
    __slots__ = (
        "breaker",
        "err_at",
        "err_latency",
        "err_message",
        "err_status",
        "err_type",
        "first_seen",
        "group",
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
        "totals",
    )

    def __init__(self, key: ModelKey, breaker: Breaker, group: _Provider, now: float) -> None:
        self.key = key
        self.breaker = breaker
        self.group = group
        self.totals: dict[str, list[int]] = {}  # operation → counts indexed like _OUTCOMES
        self.last_outcome: Outcome | None = None
        self.last_outcome_at: float | None = None  # registry clock
        self.last_operation = semconv.OPERATION_INFERENCE
        self.last_failure: float | None = None
        self.err_type: str | None = None
        self.err_message: str | None = None
        self.err_status: int | None = None
        self.err_latency: float | None = None
        self.err_at: float | None = None  # None: no error seen yet
        self.rate_limited_until = -math.inf
        self.first_seen = now
        self.in_incident = False
        self.incident_opened = False  # the breaker opened during this incident
        self.incident_start = 0.0
        self.incident_failed = 0


def _has_succeeded(entry: _Entry) -> bool:
    return any(counts[_I_SUCCESS] for counts in entry.totals.values())


# Registries alive in this process, so a forked child can give each fresh locks.
_REGISTRIES: Final[weakref.WeakSet[HealthRegistry]] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for registry in list(_REGISTRIES):
        registry._reinit_locks()


os.register_at_fork(after_in_child=_after_fork_in_child)


class HealthRegistry:
    """Health of every model this process talks to. See docs/health-model.md."""

    def __init__(
        self,
        *,
        config: BreakerConfig | None = None,
        max_keys: int = 500,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        random: RandomSource | None = None,
    ) -> None:
        self.config = config if config is not None else BreakerConfig()
        self.max_keys = max(1, int(max_keys))
        self._clock = clock
        self._wall_clock = wall_clock
        self._random: RandomSource = random if random is not None else _random.Random()
        self._lock = threading.Lock()
        self._dispatch_lock = threading.Lock()
        self._entries: OrderedDict[ModelKey, _Entry] = OrderedDict()  # LRU order: oldest first
        self._providers: dict[str, _Provider] = {}
        self._listeners: tuple[HealthListener, ...] = ()
        self._pending: deque[HealthTransition] = deque()
        # Transitions of the current locked section; moved to _pending before the lock is released.
        self._scratch: list[HealthTransition] = []
        self._offset: float | None = None  # wall - monotonic, per locked section that needs it
        self._evictions = 0
        self._unattributed: dict[tuple[str, str, str, Outcome], int] = {}
        _REGISTRIES.add(self)

    # --- clocks ------------------------------------------------------------------------------
    def now(self) -> float:
        """The registry's clock (monotonic seconds): pass it back as ``started_at``."""
        return self._clock()

    def to_monotonic(self, epoch_s: float) -> float:
        """Map a wall-clock time (epoch seconds) onto the registry clock."""
        return self._clock() - (self._wall_clock() - epoch_s)

    def _wall(self, mono: float) -> float:
        offset = self._offset
        if offset is None:
            offset = self._offset = self._wall_clock() - self._clock()
        return mono + offset

    @property
    def evictions(self) -> int:
        """How many keys were evicted because the registry held more than ``max_keys``."""
        return self._evictions

    # --- listeners ---------------------------------------------------------------------------
    def subscribe(self, listener: HealthListener) -> Callable[[], None]:
        """Call ``listener(transition)`` for every transition; returns a callable that unsubscribes."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            self.unsubscribe(listener)

        return unsubscribe

    def unsubscribe(self, listener: HealthListener) -> None:
        with self._lock:
            listeners = list(self._listeners)
            if listener in listeners:
                listeners.remove(listener)
            self._listeners = tuple(listeners)

    def _drain(self) -> None:
        pending = self._pending
        while pending:
            if not self._dispatch_lock.acquire(blocking=False):
                return  # another thread (or an outer frame of this one) is delivering; it sees ours
            try:
                while True:
                    try:
                        transition = pending.popleft()
                    except IndexError:
                        break
                    for listener in self._listeners:
                        try:
                            listener(transition)
                        except Exception:
                            report_internal_error("HealthRegistry listener")
            finally:
                self._dispatch_lock.release()

    @contextmanager
    def _section(self) -> Iterator[None]:
        """A locked section of a read or a manual control: transitions it caused are published in order
        and delivered after the lock is released. (``record`` inlines the same, on its hot path.)"""
        try:
            with self._lock:
                try:
                    yield
                finally:
                    self._publish_locked()
        finally:
            if self._pending:
                self._drain()

    def _publish_locked(self) -> None:
        """Under the lock: move this section's transitions to the queue, in order."""
        self._offset = None
        scratch = self._scratch
        if scratch:
            self._pending.extend(scratch)
            scratch.clear()

    # --- recording ---------------------------------------------------------------------------
    def record(
        self,
        key: ModelKey,
        outcome: Outcome,
        *,
        operation: str = semconv.OPERATION_INFERENCE,
        error_type: str | None = None,
        error_message: str | None = None,
        status_code: int | None = None,
        latency_s: float | None = None,
        started_at: float | None = None,
        retry_after_s: float | None = None,
        span_context: SpanContext | None = None,
    ) -> None:
        """Record one model call's outcome (for clients on neither httpx nor httpx2: Bedrock, gRPC …).
        ``operation`` is ``model_health.operation``: ``inference`` or ``health_check``. Never raises."""
        self.record_result(
            key,
            CallResult(
                outcome,
                operation,
                error_type,
                error_message,
                status_code,
                latency_s,
                started_at,
                retry_after_s,
                span_context,
            ),
        )

    def record_result(self, key: ModelKey, result: CallResult) -> None:
        """Record one model call's result. Never raises."""
        try:
            (
                outcome,
                operation,
                error_type,
                error_message,
                status_code,
                latency_s,
                started_at,
                retry_after_s,
                span_context,
            ) = result
            with self._lock:
                try:
                    now = self._clock()
                    entry = self._entries.get(key)
                    if outcome is not _SUCCESS_OUTCOME and (
                        outcome in _CALLERS_MISTAKES
                        or (
                            error_type == MODEL_NOT_FOUND
                            and outcome is _FAILURE_OUTCOME
                            and operation != semconv.OPERATION_HEALTH_CHECK  # a probe's model must exist
                            and (entry is None or not _has_succeeded(entry))
                        )
                    ):
                        self._record_callers_mistake_locked(key, entry, outcome, operation, started_at, now)
                        return
                    if entry is None:
                        entry = self._create_locked(key, now)
                    else:
                        self._entries.move_to_end(key)
                    breaker = entry.breaker
                    if (
                        outcome is _SUCCESS_OUTCOME
                        and breaker.state is CLOSED
                        and not breaker.level
                        and not entry.in_incident
                        and not entry.group.outage
                    ):
                        # The common case: nothing can change state, nothing to emit.
                        counts = entry.totals.get(operation)
                        if counts is None:
                            counts = self._counts_locked(entry, operation)
                        counts[_I_SUCCESS] += 1
                        entry.last_outcome = outcome
                        entry.last_outcome_at = now
                        entry.last_operation = operation
                        breaker.consecutive = 0
                        breaker.window.record(True, latency_s, now)
                    elif (
                        outcome is _FAILURE_OUTCOME
                        and breaker.state is OPEN
                        and now < breaker.open_until
                        and entry.in_incident
                    ):
                        # The steady state of an outage: no state can change, nothing to emit.
                        self._record_open_failure_locked(
                            entry, operation, error_type, error_message, status_code, latency_s, now
                        )
                    else:
                        self._record_slow_locked(
                            entry,
                            outcome,
                            operation,
                            error_type,
                            error_message,
                            status_code,
                            latency_s,
                            started_at,
                            retry_after_s,
                            span_context,
                            now,
                        )
                finally:
                    self._publish_locked()
            if self._pending:
                self._drain()
        except Exception:
            report_internal_error("HealthRegistry.record")

    def _record_callers_mistake_locked(
        self,
        key: ModelKey,
        entry: _Entry | None,
        outcome: Outcome,
        operation: str,
        started_at: float | None,
        now: float,
    ) -> None:
        """Counted, visible in metrics; no window, incident, status or LRU touch, no new key. A half-open
        trial permit still returns: the call ended."""
        if outcome is _FAILURE_OUTCOME:
            outcome = Outcome.UNKNOWN_MODEL  # a 404 for a model never seen to succeed
        if entry is not None:
            self._counts_locked(entry, operation)[_OUTCOME_INDEX[outcome]] += 1
            self._advance_locked(entry, now)
            entry.breaker.on_other(started_at)
            return
        bucket = (key.provider, key.gateway, str(operation), outcome)
        table = self._unattributed
        if bucket not in table and len(table) >= MAX_UNATTRIBUTED:
            bucket = (semconv.OTHER_VALUE, semconv.OTHER_VALUE, semconv.OTHER_VALUE, outcome)
        table[bucket] = table.get(bucket, 0) + 1

    def has_succeeded(self, key: ModelKey) -> bool:
        """The key has recorded a success since it was first seen (or last evicted): a 404 for it is then
        the model's failure (removed, deprecated), not a caller's made-up name."""
        entry = self._entries.get(key)  # a dict read: atomic, no lock needed for a yes/no
        return entry is not None and _has_succeeded(entry)

    def tracks(self, key: ModelKey) -> bool:
        """The key is one the registry keeps (bounded by ``max_keys``)."""
        return key in self._entries

    def unattributed_outcomes(self) -> dict[tuple[str, str, str, Outcome], int]:
        """Caller's mistakes (unknown models, credential errors) of models the registry does not track:
        ``(provider, gateway, operation, outcome) → count``; bounded by ``MAX_UNATTRIBUTED``."""
        with self._lock:
            return dict(self._unattributed)

    def _record_open_failure_locked(
        self,
        entry: _Entry,
        operation: str,
        error_type: str | None,
        error_message: str | None,
        status_code: int | None,
        latency_s: float | None,
        now: float,
    ) -> None:
        """A failure while OPEN, before the wait elapsed, during an incident: what _record_slow_locked does
        then (keep the two in step), without its checks and calls."""
        counts = entry.totals.get(operation)
        if counts is None:
            counts = self._counts_locked(entry, operation)
        counts[_I_FAILURE] += 1
        entry.last_outcome = _FAILURE_OUTCOME
        entry.last_outcome_at = now
        entry.last_operation = operation
        entry.err_type = error_type
        # Kept raw (bounded) and scrubbed when read, as in _record_slow_locked.
        entry.err_message = str(error_message)[:_MAX_RAW_MESSAGE] if error_message else None
        entry.err_status = status_code
        entry.err_latency = latency_s
        entry.err_at = now
        entry.last_failure = now
        entry.incident_failed += 1
        breaker = entry.breaker
        breaker.consecutive += 1
        breaker.window.record(False, latency_s, now)

    def _counts_locked(self, entry: _Entry, operation: str) -> list[int]:
        operation = str(operation)  # a caller may pass a non-str; str(str) is the same object
        counts = entry.totals.get(operation)
        if counts is None:
            if len(entry.totals) >= MAX_OPERATIONS_PER_KEY:
                operation = OTHER_OPERATION
                counts = entry.totals.get(operation)
            if counts is None:
                counts = entry.totals[operation] = [0] * len(_OUTCOMES)
        return counts

    def _create_locked(self, key: ModelKey, now: float) -> _Entry:
        group = self._providers.get(key.provider)
        if group is None:
            group = self._providers[key.provider] = _Provider(key.provider)
        entry = _Entry(key, Breaker(self.config, self._random), group, now)
        self._entries[key] = entry
        group.entries[key] = entry
        while len(self._entries) > self.max_keys:
            _, old = self._entries.popitem(last=False)
            self._evictions += 1
            old_group = old.group
            old_group.entries.pop(old.key, None)
            if not old_group.entries:
                self._providers.pop(old_group.name, None)
        return entry

    def _record_slow_locked(
        self,
        entry: _Entry,
        outcome: Outcome,
        operation: str,
        error_type: str | None,
        error_message: str | None,
        status_code: int | None,
        latency_s: float | None,
        started_at: float | None,
        retry_after_s: float | None,
        span_context: SpanContext | None,
        now: float,
    ) -> None:
        self._advance_locked(entry, now)
        breaker = entry.breaker
        before_state = breaker.state
        before_status = self._status(entry, now)
        index = _OUTCOME_INDEX[outcome]
        counts = entry.totals.get(operation)
        if counts is None:
            counts = self._counts_locked(entry, operation)
        counts[index] += 1
        entry.last_outcome = outcome
        entry.last_outcome_at = now
        entry.last_operation = operation
        if index in (_I_FAILURE, _I_RATE_LIMITED):
            entry.err_type = error_type
            # Kept raw (bounded) and scrubbed when read: scrubbing is most of a failure's cost.
            entry.err_message = str(error_message)[:_MAX_RAW_MESSAGE] if error_message else None
            entry.err_status = status_code
            entry.err_latency = latency_s
            entry.err_at = now

        if index == _I_FAILURE:
            entry.last_failure = now
            kind = breaker.on_outcome(False, latency_s, started_at, now)
            entry.incident_failed += 1
            if not entry.in_incident:
                entry.in_incident = True
                entry.incident_opened = False
                entry.incident_start = now
                entry.incident_failed = 1
                self._emit_locked(
                    entry,
                    TransitionKind.FIRST_FAILURE,
                    before_state,
                    before_state,
                    before_status,
                    now,
                    span_context,
                    operation,
                )
            if kind is not None:  # BREAKER_OPENED or HALF_OPEN_FAILED
                entry.incident_opened = True
                self._emit_locked(
                    entry, kind, before_state, breaker.state, before_status, now, span_context, operation
                )
                self._check_outage_locked(entry, before_state, before_status, now, span_context, operation)
        elif index == _I_SUCCESS:
            kind = breaker.on_outcome(True, latency_s, started_at, now)
            if kind is TransitionKind.RECOVERED or (
                # An incident whose breaker never opened ends when its window holds no failure.
                entry.in_incident
                and not entry.incident_opened
                and breaker.state is CLOSED
                and not breaker.window.failures
            ):
                self._recover_locked(entry, before_state, before_status, now, span_context, operation)
        else:
            if index == _I_RATE_LIMITED:
                wait = retry_after_s if retry_after_s is not None else self.config.rate_limit_default_s
                # The newest Retry-After wins: it is the provider's latest word.
                entry.rate_limited_until = now + max(0.0, wait)
            breaker.on_other(started_at)
        if entry.group.outage:
            self._check_provider_recovered_locked(entry, now, span_context, operation)

    def _recover_locked(
        self,
        entry: _Entry,
        before_state: BreakerState,
        before_status: HealthStatus,
        now: float,
        span_context: SpanContext | None,
        operation: str,
    ) -> None:
        in_incident = entry.in_incident
        entry.in_incident = False
        entry.incident_opened = False
        self._emit_locked(
            entry,
            TransitionKind.RECOVERED,
            before_state,
            entry.breaker.state,
            before_status,
            now,
            span_context,
            operation,
            time_to_recover_s=(now - entry.incident_start) if in_incident else None,
            failed_calls_in_incident=entry.incident_failed if in_incident else 0,
        )
        entry.incident_failed = 0

    def _advance_locked(self, entry: _Entry, now: float) -> None:
        """Apply what the clock made due for one entry, emitting clock-driven transitions."""
        breaker = entry.breaker
        kind = breaker.advance(now)
        if kind is TransitionKind.HALF_OPEN:
            at = breaker.half_open_since
            self._emit_locked(
                entry, kind, OPEN, HALF_OPEN, _UNHEALTHY, now, None, entry.last_operation, when=at
            )
        elif (
            entry.in_incident
            and not entry.incident_opened
            and breaker.state is CLOSED
            and not breaker.window.failures
        ):
            # A time window aged the incident's failures out.
            status = self._status(entry, now)
            self._recover_locked(entry, CLOSED, status, now, None, entry.last_operation)
        if entry.group.outage:
            self._check_provider_recovered_locked(entry, now, None, entry.last_operation)

    # --- status and provider outages ------------------------------------------------------------
    def _status(self, entry: _Entry, now: float) -> HealthStatus:
        breaker = entry.breaker
        state = breaker.state
        if state is OPEN:
            return _UNHEALTHY
        last = entry.last_outcome_at
        if last is None:
            return _UNKNOWN
        stale_after = self.config.stale_after_s
        if stale_after and now - last >= stale_after:
            return _STALE
        if state is HALF_OPEN or now < entry.rate_limited_until:
            return _DEGRADED
        window = breaker.window
        calls = window.successes + window.failures
        if calls and window.successes / calls < self.config.degraded_below:
            return _DEGRADED
        return _HEALTHY

    def _check_outage_locked(
        self,
        entry: _Entry,
        before_state: BreakerState,
        before_status: HealthStatus,
        now: float,
        span_context: SpanContext | None,
        operation: str,
    ) -> None:
        group = entry.group
        if group.outage:
            return
        unhealthy: list[ModelKey] = []
        for other in list(group.entries.values()):
            if other is not entry:
                self._advance_locked(other, now)
            status = self._status(other, now)
            if status is _STALE:
                continue
            if status is not _UNHEALTHY:
                return
            unhealthy.append(other.key)
        if len(unhealthy) >= 2:
            group.outage = True
            self._emit_locked(
                entry,
                TransitionKind.PROVIDER_OUTAGE,
                before_state,
                entry.breaker.state,
                before_status,
                now,
                span_context,
                operation,
                provider=group.name,
                provider_models=tuple(unhealthy),
            )

    def _check_provider_recovered_locked(
        self, entry: _Entry, now: float, span_context: SpanContext | None, operation: str
    ) -> None:
        group = entry.group
        if not group.outage or self._status(entry, now) is not _HEALTHY:
            return
        group.outage = False
        self._emit_locked(
            entry,
            TransitionKind.PROVIDER_RECOVERED,
            entry.breaker.state,
            entry.breaker.state,
            _UNHEALTHY,
            now,
            span_context,
            operation,
            provider=group.name,
            provider_models=tuple(group.entries),
        )

    # --- transitions and snapshots --------------------------------------------------------------
    def _emit_locked(
        self,
        entry: _Entry,
        kind: TransitionKind,
        before: BreakerState,
        after: BreakerState,
        before_status: HealthStatus,
        now: float,
        span_context: SpanContext | None,
        operation: str,
        *,
        when: float | None = None,
        time_to_recover_s: float | None = None,
        failed_calls_in_incident: int | None = None,
        provider: str | None = None,
        provider_models: tuple[ModelKey, ...] = (),
    ) -> None:
        state = self._snapshot_entry_locked(entry, now)
        trace_id = span_id = sampled = None
        if span_context is not None and span_context.is_valid:
            trace_id = span_context.trace_id
            span_id = span_context.span_id
            sampled = span_context.trace_flags.sampled
        self._scratch.append(
            HealthTransition(
                kind=kind,
                key=entry.key,
                before=before,
                after=after,
                before_status=before_status,
                after_status=state.status,
                state=state,
                operation=operation,
                error=state.last_error,
                at=self._wall(now if when is None else when),
                trace_id=trace_id,
                span_id=span_id,
                sampled=sampled,
                time_to_recover_s=time_to_recover_s,
                failed_calls_in_incident=failed_calls_in_incident,
                provider=provider,
                provider_models=provider_models,
            )
        )

    def _snapshot_entry_locked(self, entry: _Entry, now: float) -> ModelHealthState:
        breaker = entry.breaker
        window = breaker.window
        calls = window.successes + window.failures
        latencies = sorted(window.latencies(now))
        totals: dict[tuple[str, Outcome], int] = {}
        for op, counts in entry.totals.items():
            for i, n in enumerate(counts):
                if n:
                    totals[(op, _OUTCOMES[i])] = n
        last_error = None
        if entry.err_at is not None:
            last_error = ErrorInfo(
                error_type=entry.err_type,
                message=scrub(entry.err_message) if entry.err_message else None,
                status_code=entry.err_status,
                latency_s=entry.err_latency,
                at=self._wall(entry.err_at),
            )
        entered = breaker.entered
        return ModelHealthState(
            key=entry.key,
            status=self._status(entry, now),
            breaker_state=breaker.state,
            success_rate=(window.successes / calls) if calls else None,
            calls_in_window=calls,
            failures_in_window=window.failures,
            consecutive_failures=breaker.consecutive,
            outcome_totals=totals,
            breaker_transitions={CLOSED: entered[0], OPEN: entered[1], HALF_OPEN: entered[2]},
            latency_p50_s=percentile(latencies, 0.5),
            latency_p95_s=percentile(latencies, 0.95),
            last_outcome=entry.last_outcome,
            last_outcome_at=None if entry.last_outcome_at is None else self._wall(entry.last_outcome_at),
            last_error=last_error,
            last_failure_at=None if entry.last_failure is None else self._wall(entry.last_failure),
            open_until=self._wall(breaker.open_until) if breaker.state is OPEN else None,
            rate_limited_until=(
                self._wall(entry.rate_limited_until) if entry.rate_limited_until > now else None
            ),
            first_seen_at=self._wall(entry.first_seen),
            as_of=self._wall(now),
        )

    # --- reads ------------------------------------------------------------------------------
    def get(self, *, provider: str, model: str, gateway: str = DIRECT_GATEWAY) -> ModelHealthState | None:
        """The current health of one model, or None if it was never recorded (or was evicted)."""
        key = ModelKey(provider=provider, model=model, gateway=gateway)
        with self._section():
            entry = self._entries.get(key)
            if entry is None:
                return None
            now = self._clock()
            self._advance_locked(entry, now)
            return self._snapshot_entry_locked(entry, now)

    def snapshot(self) -> list[ModelHealthState]:
        """Every tracked model, sorted by (provider, model, gateway)."""
        with self._lock:
            entries = list(self._entries.values())
        states: list[ModelHealthState] = []
        for entry in entries:
            # One entry per locked section: records of other threads interleave.
            with self._section():
                now = self._clock()
                self._advance_locked(entry, now)
                states.append(self._snapshot_entry_locked(entry, now))
        states.sort(key=lambda s: (s.key.provider, s.key.model, s.key.gateway))
        return states

    def summary(self, *, provider: str | None = None) -> dict[str, Any]:
        """The /health JSON document (docs/health-endpoint.md)."""
        states = self.snapshot()
        wanted = None if provider is None else ModelKey(provider=provider, model="-").provider
        with self._lock:
            outages = {name for name, group in self._providers.items() if group.outage}
            wall_now = self._wall_clock()
        counts = {s.value: 0 for s in (_HEALTHY, _DEGRADED, _UNHEALTHY, _STALE, _UNKNOWN)}
        providers: dict[str, dict[str, Any]] = {}
        for state in states:
            name = state.key.provider
            if wanted is not None and name != wanted:
                continue
            counts[state.status.value] += 1
            p = providers.setdefault(name, {"status": _HEALTHY.value, "models": 0, "unhealthy": 0})
            p["models"] += 1
            if state.status is _UNHEALTHY:
                p["unhealthy"] += 1
            if state.status in (_UNHEALTHY, _DEGRADED) and p["status"] == _HEALTHY.value:
                p["status"] = _DEGRADED.value
        for name, p in providers.items():
            if name in outages:
                p["status"] = _UNHEALTHY.value
        total = sum(counts.values())
        if any(p["status"] == _UNHEALTHY.value for p in providers.values()):
            overall = _UNHEALTHY.value
        elif counts[_DEGRADED.value] or counts[_UNHEALTHY.value]:
            overall = _DEGRADED.value
        elif total == 0:
            overall = _UNKNOWN.value
        else:
            overall = _HEALTHY.value
        return {
            "status": overall,
            "models": {"total": total, **counts},
            "providers": providers,
            "checked_at": datetime.fromtimestamp(wall_now, tz=UTC).isoformat(),
        }

    # --- routing ----------------------------------------------------------------------------
    def is_available(self, *, provider: str, model: str, gateway: str = DIRECT_GATEWAY) -> bool:
        """False when OPEN, HALF_OPEN with no trial slot left, or rate-limited. Unknown models: True."""
        key = ModelKey(provider=provider, model=model, gateway=gateway)
        with self._section():
            entry = self._entries.get(key)
            if entry is None:
                return True
            now = self._clock()
            self._advance_locked(entry, now)
            breaker = entry.breaker
            if now < entry.rate_limited_until or breaker.state is OPEN:
                return False
            return breaker.state is CLOSED or breaker.permit_available(now)

    def try_acquire(self, *, provider: str, model: str, gateway: str = DIRECT_GATEWAY) -> Permit | None:
        """A permit to call the model now, or None (OPEN, no trial slot left, or rate-limited).

        CLOSED (and unknown models): always a permit, which tracks nothing. HALF_OPEN: at most
        ``half_open_trials`` slots per half-open period (see ``Permit``).
        """
        key = ModelKey(provider=provider, model=model, gateway=gateway)
        with self._section():
            entry = self._entries.get(key)
            if entry is None:
                return Permit(key, expires_at=None, period=0)
            now = self._clock()
            self._advance_locked(entry, now)
            breaker = entry.breaker
            if now < entry.rate_limited_until or breaker.state is OPEN:
                return None
            if breaker.state is CLOSED:
                return Permit(key, expires_at=None, period=breaker.period)
            if not breaker.permit_available(now):
                return None
            permit = Permit(
                key,
                expires_at=now + self.config.permit_expiry_s,
                period=breaker.period,
                owner=self._release_permit,
            )
            breaker.permits.append(permit)
            return permit

    def _release_permit(self, permit: Permit) -> None:
        with self._lock:
            entry = self._entries.get(permit.key)
            if entry is not None and permit in entry.breaker.permits:
                entry.breaker.permits.remove(permit)

    # --- manual control ---------------------------------------------------------------------
    def force_open(
        self, *, provider: str, model: str, gateway: str = DIRECT_GATEWAY, duration_s: float | None = None
    ) -> None:
        """Open the breaker now, for ``duration_s`` or (None) the next backoff wait.

        Emits ``breaker_opened`` (with no span) unless it was already OPEN, and starts an incident
        that ends with ``recovered`` when the breaker closes again.
        """
        key = ModelKey(provider=provider, model=model, gateway=gateway)
        with self._section():
            now = self._clock()
            entry = self._entries.get(key)
            if entry is None:
                entry = self._create_locked(key, now)
            self._advance_locked(entry, now)
            before_state = entry.breaker.state
            before_status = self._status(entry, now)
            if entry.breaker.force_open(now, duration_s):
                if not entry.in_incident:
                    entry.in_incident = True
                    entry.incident_start = now
                    entry.incident_failed = 0
                entry.incident_opened = True
                self._emit_locked(
                    entry,
                    TransitionKind.BREAKER_OPENED,
                    before_state,
                    OPEN,
                    before_status,
                    now,
                    None,
                    entry.last_operation,
                )
                self._check_outage_locked(entry, before_state, before_status, now, None, entry.last_operation)

    def reset(self, *, provider: str, model: str, gateway: str = DIRECT_GATEWAY) -> None:
        """Back to CLOSED with an empty window, backoff level 0 and no rate limit. Totals are kept.

        Emits ``recovered`` when the model was in an incident or its breaker was not CLOSED.
        """
        key = ModelKey(provider=provider, model=model, gateway=gateway)
        with self._section():
            entry = self._entries.get(key)
            if entry is None:
                return
            now = self._clock()
            self._advance_locked(entry, now)
            before_state = entry.breaker.state
            before_status = self._status(entry, now)
            changed = entry.breaker.reset(now)
            entry.rate_limited_until = -math.inf
            if changed or entry.in_incident:
                self._recover_locked(entry, before_state, before_status, now, None, entry.last_operation)
            self._check_provider_recovered_locked(entry, now, None, entry.last_operation)

    def clear(self) -> None:
        """Forget every model (tests, or an operator's reset). Listeners stay subscribed."""
        with self._lock:
            self._entries.clear()
            self._providers.clear()
            self._unattributed.clear()
            self._evictions = 0

    def model_keys(self) -> list[ModelKey]:
        """The tracked keys, least recently recorded first."""
        with self._lock:
            return list(self._entries)

    def _reinit_locks(self) -> None:
        # After fork() only the forking thread exists in the child; a lock some other parent thread
        # held would stay locked forever. State guarded by it is O(1)-consistent enough to go on with.
        self._lock = threading.Lock()
        self._dispatch_lock = threading.Lock()
        self._scratch = []
        self._offset = None
