"""Sliding windows of call outcomes: a ring plus running totals, O(1) per record.

Only successes and failures enter a window (rate limits and neutral outcomes are not held against a
model). Each window also keeps the latencies of its calls so snapshots can report p50/p95; the
percentiles are computed at snapshot time, never per record.
"""

from __future__ import annotations

import math
from math import isnan
from typing import Final

_EMPTY: Final = 0
_SUCCESS: Final = 1
_FAILURE: Final = 2
_SLOW: Final = 4  # or'ed into a count window's slot: the call was slow (``mark_slow``)
_NAN: Final = math.nan

# The time window keeps at most this many latencies (the newest ones) for its percentiles.
TIME_WINDOW_LATENCY_SAMPLES: Final = 512


class CountWindow:
    """The last ``size`` outcomes. Ring slots are preallocated: a record allocates nothing."""

    __slots__ = ("_latency", "_pos", "_ring", "_size", "failures", "slow", "successes")

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring = bytearray(size)
        self._latency: list[float] = [_NAN] * size
        self._pos = 0
        self.successes = 0
        self.failures = 0
        self.slow = 0  # slow calls among them

    def record(self, success: bool, latency_s: float | None, now: float) -> None:
        pos = self._pos
        old = self._ring[pos]
        if old == _SUCCESS:
            self.successes -= 1
        elif old == _FAILURE:
            self.failures -= 1
        elif old:  # a slow call leaves
            self.slow -= 1
            if old & _SUCCESS:
                self.successes -= 1
            else:
                self.failures -= 1
        if success:
            self._ring[pos] = _SUCCESS
            self.successes += 1
        else:
            self._ring[pos] = _FAILURE
            self.failures += 1
        self._latency[pos] = _NAN if latency_s is None else latency_s
        pos += 1
        self._pos = 0 if pos == self._size else pos

    def mark_slow(self, now: float) -> None:
        """The outcome just recorded was a slow call (nothing when the window was reset since)."""
        pos = self._pos - 1 if self._pos else self._size - 1
        if self._ring[pos] and not self._ring[pos] & _SLOW:
            self._ring[pos] |= _SLOW
            self.slow += 1

    def advance(self, now: float) -> None:
        """A count window does not age."""

    def reset(self) -> None:
        self._ring[:] = bytes(self._size)
        self._latency[:] = [_NAN] * self._size
        self._pos = 0
        self.successes = 0
        self.failures = 0
        self.slow = 0

    def latencies(self, now: float) -> list[float]:
        # NaN marks an empty slot or a call without a latency.
        return [x for x in self._latency if not isnan(x)]


class TimeWindow:
    """Outcomes of the last ``size`` seconds, in one-second buckets.

    Buckets are cleared as the clock moves past them, at most ``size`` per advance, so the cost per
    record is O(1) amortised. A clock that steps backwards (an injected test clock) records into the
    newest bucket.
    """

    __slots__ = (
        "_bucket_failures",
        "_bucket_slow",
        "_bucket_successes",
        "_head",
        "_lat_pos",
        "_lat_time",
        "_lat_value",
        "_size",
        "failures",
        "slow",
        "successes",
    )

    def __init__(self, size: int) -> None:
        self._size = size
        self._bucket_successes = [0] * size
        self._bucket_failures = [0] * size
        self._bucket_slow = [0] * size
        self.slow = 0
        self._head: int | None = None  # the second (int(now)) of the newest bucket
        self._lat_value: list[float] = [_NAN] * TIME_WINDOW_LATENCY_SAMPLES
        self._lat_time: list[float] = [-math.inf] * TIME_WINDOW_LATENCY_SAMPLES
        self._lat_pos = 0
        self.successes = 0
        self.failures = 0

    def advance(self, now: float) -> None:
        second = int(now)
        head = self._head
        if head is None:
            self._head = second
            return
        if second <= head:
            return
        size = self._size
        # Clear every bucket the clock moved past (at most the whole ring).
        for s in range(head + 1, min(second, head + size) + 1):
            i = s % size
            self.successes -= self._bucket_successes[i]
            self.failures -= self._bucket_failures[i]
            self.slow -= self._bucket_slow[i]
            self._bucket_successes[i] = 0
            self._bucket_failures[i] = 0
            self._bucket_slow[i] = 0
        self._head = second

    def record(self, success: bool, latency_s: float | None, now: float) -> None:
        self.advance(now)
        assert self._head is not None
        i = self._head % self._size
        if success:
            self._bucket_successes[i] += 1
            self.successes += 1
        else:
            self._bucket_failures[i] += 1
            self.failures += 1
        if latency_s is not None:
            pos = self._lat_pos
            self._lat_value[pos] = latency_s
            self._lat_time[pos] = now
            pos += 1
            self._lat_pos = 0 if pos == TIME_WINDOW_LATENCY_SAMPLES else pos

    def mark_slow(self, now: float) -> None:
        """The outcome just recorded (in the newest bucket) was a slow call (nothing when the window was
        reset since: it is then empty)."""
        if self._head is not None and self.successes + self.failures:
            self._bucket_slow[self._head % self._size] += 1
            self.slow += 1

    def reset(self) -> None:
        self._bucket_successes[:] = [0] * self._size
        self._bucket_failures[:] = [0] * self._size
        self._bucket_slow[:] = [0] * self._size
        self.slow = 0
        self._lat_value[:] = [_NAN] * TIME_WINDOW_LATENCY_SAMPLES
        self._lat_time[:] = [-math.inf] * TIME_WINDOW_LATENCY_SAMPLES
        self._lat_pos = 0
        self.successes = 0
        self.failures = 0

    def latencies(self, now: float) -> list[float]:
        self.advance(now)
        if self._head is None:
            return []
        oldest_second = self._head - self._size + 1
        return [
            value
            for value, at in zip(self._lat_value, self._lat_time, strict=True)
            if not isnan(value) and at >= oldest_second
        ]


def make_window(kind: str, size: int) -> CountWindow | TimeWindow:
    return TimeWindow(size) if kind == "time" else CountWindow(size)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when empty."""
    n = len(sorted_values)
    if n == 0:
        return None
    rank = max(1, math.ceil(q * n))
    return sorted_values[min(rank, n) - 1]
