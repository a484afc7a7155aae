"""Which registered models a ``HealthMonitor`` probes on a given round.

A probe costs a request (and sometimes a token), so by default a model is probed only when the
registry has nothing fresh to say about it: never seen, stale, or not CLOSED (an OPEN breaker needs
calls to reach its half-open trials). Models with real traffic inside the last interval are skipped:
that traffic is a better health signal than a 1-token probe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from ..health.types import BreakerState, HealthStatus, ModelHealthState
from ..keys import ModelKey


@dataclass(frozen=True, slots=True)
class ProbeCandidate:
    """What a selector sees for one registered probe."""

    key: ModelKey
    state: ModelHealthState | None  # None: the registry has never seen this model
    since_last_outcome_s: float | None  # seconds since the model's last outcome; None: no outcome yet
    interval_s: float  # the monitor's probe interval


Selector: TypeAlias = Callable[[ProbeCandidate], bool]
Selection: TypeAlias = Literal["due", "always"] | Selector


def probe_due(candidate: ProbeCandidate) -> bool:
    """The default: probe unless the model had an outcome within the last interval and is CLOSED."""
    state = candidate.state
    age = candidate.since_last_outcome_s
    if state is None or age is None:
        return True  # never seen: a probe gives the first answer
    if state.breaker_state is not BreakerState.CLOSED:
        # OPEN: probes are what reaches the half-open trials when real traffic routes around the model.
        # HALF_OPEN: a probe started now is a trial.
        return True
    if state.status in (HealthStatus.STALE, HealthStatus.UNKNOWN):
        return True
    return age >= candidate.interval_s


def probe_always(candidate: ProbeCandidate) -> bool:
    return True


def resolve_selection(select: Selection) -> Selector:
    if select == "due":
        return probe_due
    if select == "always":
        return probe_always
    if callable(select):
        return select
    raise ValueError(f"select must be 'due', 'always' or a callable, got {select!r}")
