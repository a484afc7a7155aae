"""A clock tests move by hand, for time-based fault recovery without sleeping."""

from __future__ import annotations

import threading


class ManualClock:
    """Callable like ``time.monotonic``; only :meth:`advance` moves it. Thread-safe."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._now += seconds
