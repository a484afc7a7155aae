"""The recent past of every model, for the status page: a success-rate series and an incident timeline.

Both are always on, for every key, so both are small. The series reuses ``history.History`` with a single
tier of one-minute buckets (62 of them: the last 60 minutes, the current partial one and the ring's
spare), 2 x 62 x 4 bytes per key; a record adds one increment to it. The timeline keeps the last
``TIMELINE_LENGTH`` incident transitions of the key; it is written only when a transition happens, never
on the common record.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, NamedTuple

from .history import FINE_WIDTH_S, History, Layout
from .types import HealthTransition, TransitionKind

if TYPE_CHECKING:
    from .model_state import ModelState

RECENT_MINUTES: Final = 60
RECENT_LAYOUT: Final = Layout([(FINE_WIDTH_S, RECENT_MINUTES + 2)])
TIMELINE_LENGTH: Final = 20

# The steps of one model's incident; provider-wide and SLO transitions are shown elsewhere.
TIMELINE_KINDS: Final = frozenset(
    {
        TransitionKind.FIRST_FAILURE,
        TransitionKind.BREAKER_OPENED,
        TransitionKind.HALF_OPEN,
        TransitionKind.HALF_OPEN_FAILED,
        TransitionKind.RECOVERED,
    }
)


class TimelineEntry(NamedTuple):
    """One incident step of a model: what happened, when (epoch seconds) and the causing span."""

    kind: TransitionKind
    at: float
    trace_id: int | None
    span_id: int | None
    error_type: str | None


class Recent(NamedTuple):
    """A read of one model's recent past."""

    good: tuple[int, ...]  # successes per minute, oldest first; the last is the current minute
    bad: tuple[int, ...]  # failures per minute
    end: float  # epoch seconds when the last (current) minute ends
    timeline: tuple[TimelineEntry, ...]  # oldest first


def new_series(now: float) -> History:
    return History(RECENT_LAYOUT, now)


def note(timeline: deque[TimelineEntry] | None, transition: HealthTransition) -> deque[TimelineEntry]:
    """``timeline`` (made on a key's first incident step) with ``transition`` added."""
    if timeline is None:
        timeline = deque(maxlen=TIMELINE_LENGTH)
    error = transition.error
    timeline.append(
        TimelineEntry(
            transition.kind,
            transition.at,
            transition.trace_id,
            transition.span_id,
            None if error is None else error.error_type,
        )
    )
    return timeline


def read_recent(state: ModelState, now: float, wall: Callable[[float], float]) -> Recent:
    """The last ``RECENT_MINUTES`` minutes of ``state`` at ``now`` (the registry clock)."""
    series = state.recent
    series.advance(now)  # clears the minutes that passed without a record
    count = RECENT_LAYOUT.tiers[0].count
    current = series.heads[0]
    slots = [(current - RECENT_MINUTES + 1 + i) % count for i in range(RECENT_MINUTES)]
    good, bad = series.good, series.bad
    end = (current + 1) * FINE_WIDTH_S
    timeline = state.timeline
    return Recent(
        good=tuple(good[s] for s in slots),
        bad=tuple(bad[s] for s in slots),
        end=wall(end),
        timeline=() if timeline is None else tuple(timeline),
    )
