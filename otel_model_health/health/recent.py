"""The recent past of every model, for the status page: a success-rate series and an incident timeline.

Both are always on, for every key, so both cost next to nothing on the record path.

The series is the last hour per minute, derived from the cumulative success and failure counts the
state keeps anyway (``ModelState.totals``): at the start of each minute the state marks the totals of
that moment in a ring (``MinuteMarks``), and a minute's counts are the difference between two marks. A
record pays one compare (has the current minute ended?); the mark is written once a minute, by the first
record or read after the minute ended. Measured with ``history.History`` (one tier, an increment per
record) instead, a record cost 0.1 us more, which took the outage-failure record over its 2 us target.

The timeline keeps the last ``TIMELINE_LENGTH`` incident transitions of the key; it is written only when
a transition happens.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, NamedTuple

from .types import HealthTransition, TransitionKind

if TYPE_CHECKING:
    from .model_state import ModelState

MINUTE_S: Final = 60
RECENT_MINUTES: Final = 60
_RING: Final = RECENT_MINUTES + 2  # the hour, the current minute, and the mark that starts the hour
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


class MinuteMarks:
    """Cumulative (successes, failures) at the start of each of the last minutes. Not thread-safe."""

    __slots__ = ("bad", "first", "good", "head")

    def __init__(self, now: float) -> None:
        self.head = self.first = math.floor(now / MINUTE_S)  # the current minute; the key's first
        self.good = array("Q", bytes(8 * _RING))
        self.bad = array("Q", bytes(8 * _RING))

    def roll(self, now: float, good: int, bad: int) -> float:
        """Mark the minutes that began since the last roll with the totals ``good``/``bad`` of ``now`` (no
        record came in between); returns when the current minute ends."""
        minute = math.floor(now / MINUTE_S)
        head = self.head
        for m in range(max(head + 1, minute - _RING + 1), minute + 1):
            self.good[m % _RING] = good
            self.bad[m % _RING] = bad
        self.head = max(head, minute)
        return float((self.head + 1) * MINUTE_S)

    def per_minute(self, good: int, bad: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Counts per minute for the last ``RECENT_MINUTES`` (oldest first), given the totals now."""
        head, first = self.head, self.first
        goods: list[int] = []
        bads: list[int] = []
        for m in range(head - RECENT_MINUTES + 1, head + 1):
            if m < first:
                goods.append(0)
                bads.append(0)
                continue
            end_good = good if m == head else self.good[(m + 1) % _RING]
            end_bad = bad if m == head else self.bad[(m + 1) % _RING]
            goods.append(end_good - self.good[m % _RING])
            bads.append(end_bad - self.bad[m % _RING])
        return tuple(goods), tuple(bads)


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
    good, bad = state.good_and_bad()
    marks = state.recent
    if now >= state.recent_edge:
        state.recent_edge = marks.roll(now, good, bad)
    goods, bads = marks.per_minute(good, bad)
    timeline = state.timeline
    return Recent(
        good=goods,
        bad=bads,
        end=wall(state.recent_edge),
        timeline=() if timeline is None else tuple(timeline),
    )
