"""A brute-force SLO calculator over raw events, and the documented bucket-resolution bound
(otel_model_health/health/history.py, docs/slo.md) that the bucketed history must stay within."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

from otel_model_health.health.history import Layout


class EventLog:
    """Every event's time and verdict, with prefix sums: exact counts over any interval in O(log n)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.bad_prefix: list[int] = [0]

    def add(self, at: float, good: bool) -> None:
        assert not self.times or at >= self.times[-1]
        self.times.append(at)
        self.bad_prefix.append(self.bad_prefix[-1] + (0 if good else 1))

    def counts(self, start: float, now: float) -> tuple[int, int]:
        """Exact (good, bad) in ``[start, now]``."""
        lo, hi = bisect_left(self.times, start), bisect_right(self.times, now)
        bad = self.bad_prefix[hi] - self.bad_prefix[lo]
        return hi - lo - bad, bad

    def edge_bucket(self, layout: Layout, now: float, window_s: float) -> tuple[float, float]:
        """The bucket holding the window's start (the history's pro-rata bucket): (start, width)."""
        last = layout.tiers[-1]
        oldest = (math.floor(now / last.width_s) - last.size + 1) * last.width_s
        start = max(now - window_s, oldest)  # a window longer than the history is clamped to it
        width = layout.resolution_at(now, start)
        return math.floor(start / width) * width, width

    def burn_bracket(self, layout: Layout, now: float, window_s: float, budget: float) -> tuple[float, float]:
        """The least and greatest exact burn rate of a window starting anywhere in the edge bucket: the
        history's burn rate lies between them (its pro-rata edge mixes two such windows)."""
        edge, width = self.edge_bucket(layout, now, window_s)
        starts = [edge, edge + width]
        lo, hi = bisect_left(self.times, edge), bisect_right(self.times, edge + width)
        starts += self.times[lo:hi]
        rates = []
        for s in starts:
            good, bad = self.counts(s, now)
            rates.append((bad / (good + bad)) / budget if good + bad else 0.0)
        return min(rates), max(rates)
