"""Bounded, bucketed history of good and bad events for one (model key, SLO) series.

Memory is allocated once, when a key first matches an SLO: one ``array('I')`` of good counts and one of
bad counts, each holding every tier's ring back to back. A record touches only the current fine
(1-minute) bucket; a minute's counts are added to the coarser tiers once, when the minute closes (the
next record or read after it). So a record costs a compare and an increment, and allocates nothing that
lives on.

A window ``[now - W, now]`` is summed from the finest tier that still holds its start, handing over to
coarser tiers for older time. Where a coarse bucket straddles the hand-over point, the part a finer tier
already counted is subtracted, so the only approximation is at the window's old edge: the bucket that
contains ``now - W`` is counted pro rata (the fraction of it inside the window). Hence the documented
bound (docs/slo.md): the counts lie between the exact counts of the window starting at that bucket's end
and of the window starting at its start, and the burn rate between the exact burn rates of two windows
whose starts lie in that bucket. The bucket is one minute for a window start within the last hour, five
minutes within the last 6 h, one hour up to the longest alert window, one day beyond.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Final, NamedTuple

_MAX_COUNT: Final = 0xFFFFFFFF  # counts saturate (a coarse bucket at > 1M calls/s per model)

FINE_WIDTH_S: Final = 60
MID_WIDTH_S: Final = 300
FINE_COVER_S: Final = 6 * 3600  # the 5-minute tier's cover (the 1-minute tier covers an hour)
HOUR_S: Final = 3600
DAY_S: Final = 86400


class Tier(NamedTuple):
    width_s: int
    size: int  # buckets in the ring
    offset: int  # where the ring starts in the series' arrays


class Layout:
    """The tiers of a series: shared (immutable) by every series of one SLO."""

    __slots__ = ("size", "tiers")

    def __init__(self, tiers: Sequence[tuple[int, int]]) -> None:
        built: list[Tier] = []
        offset = 0
        for i, (width, count) in enumerate(tiers):
            if i and width % tiers[i - 1][0]:
                raise ValueError("each tier's bucket width must be a multiple of the finer one's")
            built.append(Tier(width, count, offset))
            offset += count
        self.tiers: tuple[Tier, ...] = tuple(built)
        self.size = offset

    @classmethod
    def for_windows(
        cls, longest_alert_window_s: float, period_s: float, shortest_window_s: float = FINE_COVER_S
    ) -> Layout:
        """1-minute buckets for an hour, 5-minute ones for 6 h, hours up to the longest alert window,
        days up to the period: the pages' windows at 1 minute, the ticket's short one at 5 minutes.

        Each ring holds two buckets more than its cover (the pro-rata edge bucket and the current,
        partial one), and enough that the hand-over to the next tier lands on closed buckets. Windows
        shorter than 5 minutes (demos, tests) get finer buckets: a fifth of the shortest window, a divisor
        of a minute, over the longest alert window, then minutes up to the period.
        """
        if shortest_window_s < 5 * FINE_WIDTH_S:
            return cls._short(shortest_window_s, longest_alert_window_s, period_s)
        tiers: list[tuple[int, int]] = [
            (FINE_WIDTH_S, HOUR_S // FINE_WIDTH_S + 2),
            (MID_WIDTH_S, FINE_COVER_S // MID_WIDTH_S + 2),
        ]
        hours = max(math.ceil(longest_alert_window_s / HOUR_S), FINE_COVER_S // HOUR_S)
        if longest_alert_window_s > FINE_COVER_S or period_s > FINE_COVER_S:
            tiers.append((HOUR_S, hours + 2))
        if period_s > hours * HOUR_S:
            tiers.append((DAY_S, math.ceil(period_s / DAY_S) + 2))
        return cls(tiers)

    @classmethod
    def _short(cls, shortest_s: float, longest_s: float, period_s: float) -> Layout:
        width = max(w for w in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) if w == 1 or w <= shortest_s / 5)
        tiers = [(width, max(math.ceil(longest_s / width), 2 * FINE_WIDTH_S // width) + 3)]
        cover = tiers[0][1] * width
        if period_s > cover - 2 * width:
            if period_s > FINE_COVER_S:
                raise ValueError("alert windows under 5 minutes need a period of at most 6 h")
            tiers.append((FINE_WIDTH_S, math.ceil(period_s / FINE_WIDTH_S) + 3))
        return cls(tiers)

    def resolution_at(self, now: float, start: float) -> int:
        """The bucket width with which a window starting at ``start`` is read at ``now``."""
        for width, size, _ in self.tiers:
            oldest = (math.floor(now / width) - size + 1) * width
            if start >= oldest:
                return width
        return self.tiers[-1].width_s

    def bytes_per_series(self) -> int:
        return 2 * self.size * array("I").itemsize


class History:
    """Good and bad counts of one series. Not thread-safe: used under the registry's lock."""

    __slots__ = ("bad", "edge", "good", "heads", "layout", "pos")

    def __init__(self, layout: Layout, now: float) -> None:
        self.layout = layout
        self.good = array("I", bytes(4 * layout.size))
        self.bad = array("I", bytes(4 * layout.size))
        # The newest bucket index of each tier (time // width).
        self.heads = [math.floor(now / t.width_s) for t in layout.tiers]
        self.pos = self.heads[0] % layout.tiers[0].size  # the current fine bucket's slot
        self.edge = (self.heads[0] + 1) * layout.tiers[0].width_s  # when the current fine bucket ends

    # --- recording (hot path) -------------------------------------------------------------------
    def add(self, good: bool, now: float) -> None:
        if now >= self.edge:
            self.advance(now)
        if good:
            self.good[self.pos] += 1
        else:
            self.bad[self.pos] += 1

    def advance(self, now: float) -> bool:
        """Move to the bucket of ``now``; returns True when a fine bucket closed (a minute passed)."""
        if now < self.edge:
            return False
        tiers = self.layout.tiers
        fine = tiers[0]
        minute = math.floor(now / fine.width_s)
        head = self.heads[0]
        # Close the current minute: its counts go to every coarser tier, once.
        g, b = self.good[self.pos], self.bad[self.pos]
        for i in range(1, len(tiers)):
            bucket = head * fine.width_s // tiers[i].width_s
            self._advance_tier(i, bucket)
            if (g or b) and bucket > self.heads[i] - tiers[i].size:
                slot = tiers[i].offset + bucket % tiers[i].size
                self.good[slot] = min(self.good[slot] + g, _MAX_COUNT)
                self.bad[slot] = min(self.bad[slot] + b, _MAX_COUNT)
        self._advance_tier(0, minute)
        for i in range(1, len(tiers)):
            self._advance_tier(i, math.floor(now / tiers[i].width_s))
        self.pos = minute % fine.size
        self.edge = (minute + 1) * fine.width_s
        return True

    def _advance_tier(self, i: int, bucket: int) -> None:
        head = self.heads[i]
        if bucket <= head:
            return
        tier = self.layout.tiers[i]
        # Clear every bucket the clock moved past (at most the whole ring).
        for k in range(head + 1, min(bucket, head + tier.size) + 1):
            slot = tier.offset + k % tier.size
            self.good[slot] = 0
            self.bad[slot] = 0
        self.heads[i] = bucket

    # --- reading -----------------------------------------------------------------------------------
    def window(self, now: float, window_s: float) -> tuple[float, float]:
        """(good, bad) in ``[now - window_s, now]``; the oldest bucket counted pro rata (module doc).
        A window longer than the history is clamped to it."""
        self.advance(now)
        return self._sum(self.good, now - window_s), self._sum(self.bad, now - window_s)

    def _sum(self, counts: array[int], start: float) -> float:
        tiers = self.layout.tiers
        fine = tiers[0]
        end = self.heads[0] + 1  # exclusive bucket index: the current minute is included
        oldest = self.heads[0] - fine.size + 1
        if start >= oldest * fine.width_s:
            return self._tail(counts, 0, start, end)
        total: float = _ring_sum(counts, fine, oldest, end)
        hand_tier, hand_bucket = 0, oldest  # counted so far: from this tier's bucket on
        for i in range(1, len(tiers)):
            tier = tiers[i]
            prev = tiers[hand_tier]
            hand = hand_bucket * prev.width_s  # the time counted so far begins at
            c = -(-hand // tier.width_s)  # the first tier-i bucket starting at or after `hand`
            junction = c - 1  # the tier-i bucket holding `hand` (or just before it)
            part = float(counts[tier.offset + junction % tier.size])
            if hand != c * tier.width_s:  # the finer tier already counted [hand, c·width)
                part -= _ring_sum(counts, prev, hand_bucket, c * tier.width_s // prev.width_s)
            junction_start = junction * tier.width_s
            if start >= junction_start:
                return total + part * (hand - start) / (hand - junction_start)
            total += part
            oldest = self.heads[i] - tier.size + 1
            if start >= oldest * tier.width_s or i == len(tiers) - 1:
                return total + self._tail(counts, i, max(start, oldest * tier.width_s), junction)
            total += _ring_sum(counts, tier, oldest, junction)
            hand_tier, hand_bucket = i, oldest
        return total

    def _tail(self, counts: array[int], i: int, start: float, end: int) -> float:
        """Tier ``i``'s buckets from the one holding ``start`` (pro rata) up to ``end`` (exclusive)."""
        tier = self.layout.tiers[i]
        first = math.floor(start / tier.width_s)
        if first >= end:
            return 0.0
        fraction = (first + 1) - start / tier.width_s
        return fraction * counts[tier.offset + first % tier.size] + _ring_sum(counts, tier, first + 1, end)


def _ring_sum(counts: array[int], tier: Tier, first: int, end: int) -> int:
    """Sum of tier buckets ``first`` .. ``end - 1`` (bucket indices, within the ring)."""
    if end <= first:
        return 0
    n, off = tier.size, tier.offset
    a, b = first % n, end % n
    if a < b:
        return sum(counts[off + a : off + b])
    return sum(counts[off + a : off + n]) + sum(counts[off : off + b])
