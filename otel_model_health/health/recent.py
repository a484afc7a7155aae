"""The recent past of every model, for the status page: a success-rate series and an incident timeline.

Both are always on, for every key, so both cost next to nothing on the record path and little memory.

The series is the last hour in ``BUCKETS`` buckets of ``BUCKET_S`` seconds, derived from the cumulative
success and failure counts the state keeps anyway (``ModelState.totals``): the state remembers the totals
at the start of the current bucket, and when a bucket ends (noticed by the first record or read after its
end) the difference goes into a ring of 16-bit counters. A record pays one compare; a bucket's close is a
few array writes, once per bucket. Memory: 2 x 30 x 2 bytes of counters, two marks and the bucket's end.
(Measured alternatives: ``history.History`` with one tier, an increment per record, cost records 0.1 us
more and took the outage-failure record over its 2 us target; one-minute buckets of cumulative 64-bit
marks took a key from 1.6 KB to 3.8 KB, over the 2 KB per key target.)

The timeline is the last ``TIMELINE_LENGTH`` incident transitions of the key, one flat tuple rebuilt on
each transition (never on the common record).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from .types import HealthTransition, TransitionKind

if TYPE_CHECKING:
    from .model_state import ModelState

BUCKET_S: Final = 120
BUCKETS: Final = 30  # the last hour: 29 closed buckets and the current one
_MAX_COUNT: Final = 0xFFFF
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


def new_ring() -> array[int]:
    """Successes of each bucket's slot, then failures: ``BUCKETS`` each."""
    return array("H", bytes(2 * 2 * BUCKETS))


def bucket_end(now: float) -> int:
    return (math.floor(now / BUCKET_S) + 1) * BUCKET_S


def close_buckets(state: ModelState, now: float) -> None:
    """The current bucket of ``state`` ended before ``now``: store its counts, zero the buckets skipped
    without a call, and start the bucket of ``now``."""
    good, bad = state.good_and_bad()
    ring = state.recent
    closed = state.recent_edge // BUCKET_S - 1
    g, b = good - state.recent_good, bad - state.recent_bad
    if g > _MAX_COUNT or b > _MAX_COUNT:  # > 546 calls/s: keep the ratio, saturate the count
        scale = _MAX_COUNT / max(g, b)
        g, b = round(g * scale), round(b * scale)
    ring[closed % BUCKETS] = g
    ring[BUCKETS + closed % BUCKETS] = b
    current = math.floor(now / BUCKET_S)
    for k in range(max(closed + 1, current - BUCKETS + 1), current + 1):
        ring[k % BUCKETS] = ring[BUCKETS + k % BUCKETS] = 0
    state.recent_good, state.recent_bad = good, bad
    state.recent_edge = (current + 1) * BUCKET_S


class TimelineEntry(NamedTuple):
    """One incident step of a model: what happened, when (epoch seconds) and the causing span."""

    kind: TransitionKind
    at: float
    trace_id: int | None
    span_id: int | None
    error_type: str | None


class Recent(NamedTuple):
    """A read of one model's recent past."""

    good: tuple[int, ...]  # successes per bucket (BUCKET_S), oldest first; the last is the current one
    bad: tuple[int, ...]  # failures per bucket
    end: float  # epoch seconds when the last (current) bucket ends
    timeline: tuple[TimelineEntry, ...]  # oldest first


_FIELDS: Final = len(TimelineEntry._fields)


def note(timeline: tuple[Any, ...] | None, transition: HealthTransition) -> tuple[Any, ...]:
    """``timeline`` (None before the key's first incident step) with ``transition`` added.

    Kept flat (the fields of each entry one after the other, in one tuple): a tuple per entry would add
    48 bytes to every key that had an incident, and the registry's keys have a 2 KB budget each."""
    error = transition.error
    entry = (
        transition.kind,
        transition.at,
        transition.trace_id,
        transition.span_id,
        None if error is None else error.error_type,
    )
    if timeline is None:
        return entry
    return (*timeline[(1 - TIMELINE_LENGTH) * _FIELDS :], *entry)


def entries(timeline: tuple[Any, ...] | None) -> tuple[TimelineEntry, ...]:
    if not timeline:
        return ()
    return tuple(TimelineEntry(*timeline[i : i + _FIELDS]) for i in range(0, len(timeline), _FIELDS))


def read_recent(state: ModelState, now: float, wall: Callable[[float], float]) -> Recent:
    """The last hour of ``state`` at ``now`` (the registry clock), oldest bucket first."""
    if now >= state.recent_edge:
        close_buckets(state, now)
    good, bad = state.good_and_bad()
    ring = state.recent
    current = state.recent_edge // BUCKET_S - 1
    slots = [k % BUCKETS for k in range(current - BUCKETS + 1, current)]
    return Recent(
        good=(*(ring[s] for s in slots), good - state.recent_good),
        bad=(*(ring[BUCKETS + s] for s in slots), bad - state.recent_bad),
        end=wall(state.recent_edge),
        timeline=entries(state.timeline),
    )
