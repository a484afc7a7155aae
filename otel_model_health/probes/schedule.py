"""When each registered probe runs: due times on the monitor's monotonic clock.

A due probe is offered to the selection (``selection.py``); either way its next due time is one interval
(± jitter) later, so replicas started together drift apart. Two breaker states pull that time in:
HALF_OPEN to ``trial_interval_s`` (its trials then take seconds, not intervals), OPEN to just after the
wait ends (a probe started then is a trial). The model's ages come from one snapshot of the registry, as
differences between its own times (``as_of - last_outcome_at``), so no wall-clock time is converted back
to the monotonic clock.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from .._internal import report_internal_error
from ..health.types import BreakerState, ModelHealthState
from ..keys import ModelKey
from .selection import ProbeCandidate, Selector

_HALF_OPEN_MARGIN_S: Final = 0.01  # start a half-open probe this long after the OPEN wait ends
_UNPLACED: Final = float("-inf")

StateLookup = Callable[[ModelKey], ModelHealthState | None]


@dataclass(eq=False)
class ScheduledProbe:
    """One registered probe and its place in the schedule."""

    fn: Callable[[], Any]  # the probe: sync or async, returns anything
    key: ModelKey
    is_async: bool
    instrumented: bool  # the probe's own instrumentation records its outcome
    operation_name: str  # gen_ai.operation.name of the monitor's span for a plain probe
    closers: tuple[Callable[[], Awaitable[None]], ...] = ()
    next_due: float = _UNPLACED
    busy: bool = False  # a run, or the abandoned worker thread of a timed-out one, is still alive


class Round(NamedTuple):
    """What one look at the schedule decided."""

    start: list[ScheduledProbe]  # due, accepted by the selection, within the free slots
    skipped: int  # due, declined by the selection
    delay_s: float  # until the next due time


class Schedule:
    """The registered probes and their due times. Thread-safe registration; ``next_round`` runs in the
    scheduler's loop."""

    def __init__(
        self,
        *,
        interval_s: float,
        jitter: float,
        trial_interval_s: float,
        select: Selector,
        random: Callable[[], float],
        lookup: StateLookup,
    ) -> None:
        self.interval_s = interval_s
        self.jitter = jitter
        self.trial_interval_s = trial_interval_s
        self._select = select
        self._random = random
        self._lookup = lookup
        self._lock = threading.Lock()
        self._probes: list[ScheduledProbe] = []

    def add(self, probe: ScheduledProbe) -> None:
        with self._lock:
            self._probes.append(probe)

    def remove(self, key: ModelKey) -> bool:
        with self._lock:
            before = len(self._probes)
            self._probes = [p for p in self._probes if p.key != key]
            return len(self._probes) != before

    def probes(self) -> list[ScheduledProbe]:
        with self._lock:
            return list(self._probes)

    def next_round(self, now: float, slots: int) -> Round:
        """Give every due probe its next due time and decide whether it runs now; at most ``slots`` start
        (the others stay due: a finishing run wakes the scheduler)."""
        probes = self.probes()
        for p in probes:
            if p.next_due == _UNPLACED:
                # The first run lands within [0, jitter × interval] of start.
                p.next_due = now + self.interval_s * self.jitter * self._random_unit()
        start: list[ScheduledProbe] = []
        skipped = 0
        for p in sorted(probes, key=lambda p: p.next_due):
            if p.busy or p.next_due > now:
                continue
            if len(start) >= slots:
                break
            p.next_due = now + self.interval_s * (1.0 + self.jitter * (2.0 * self._random_unit() - 1.0))
            state = self._state(p.key)
            if self._accepts(p.key, state):
                start.append(p)
            else:
                skipped += 1
            self._pull_in(p, state, now)
        # A busy probe wakes the scheduler when it ends; until then only its future due time counts.
        waiting = [p.next_due for p in probes if not p.busy or p.next_due > now]
        delay = max(0.0, min(waiting) - now) if waiting else self.interval_s
        return Round(start, skipped, delay)

    def forget_runs(self) -> None:
        """After fork(): no run of the parent is alive in the child."""
        self._lock = threading.Lock()
        for p in self._probes:
            p.busy = False

    def _random_unit(self) -> float:
        try:
            return min(1.0, max(0.0, float(self._random())))
        except Exception:
            report_internal_error("HealthMonitor.random")
            return 0.5

    def _state(self, key: ModelKey) -> ModelHealthState | None:
        try:
            return self._lookup(key)
        except Exception:
            report_internal_error("HealthMonitor.state")
            return None

    def _accepts(self, key: ModelKey, state: ModelHealthState | None) -> bool:
        try:
            age = _age(state, None if state is None else state.last_outcome_at)
            candidate = ProbeCandidate(
                key=key, state=state, since_last_outcome_s=age, interval_s=self.interval_s
            )
            return bool(self._select(candidate))
        except Exception:
            report_internal_error("HealthMonitor.select")
            return True

    def _pull_in(self, p: ScheduledProbe, state: ModelHealthState | None, now: float) -> None:
        if state is None:
            return
        if state.breaker_state is BreakerState.HALF_OPEN:
            p.next_due = min(p.next_due, now + self.trial_interval_s)
        elif state.breaker_state is BreakerState.OPEN and state.open_until is not None:
            since_end = _age(state, state.open_until)  # negative while the wait lasts
            if since_end is not None and since_end < 0:
                p.next_due = min(p.next_due, now - since_end + _HALF_OPEN_MARGIN_S)


def _age(state: ModelHealthState | None, at: float | None) -> float | None:
    """Seconds from ``at`` (a time of ``state``) to when the snapshot was taken; None if unknown."""
    if state is None or at is None or state.as_of is None:
        return None
    return state.as_of - at
