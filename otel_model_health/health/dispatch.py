"""Delivery of transitions to listeners: in order, outside the registry's lock, never re-entrantly.

Transitions are queued (under the registry's lock, so their order is the order in which they happened)
and delivered by whoever finds the queue non-empty after releasing that lock, under a separate,
non-blocking dispatch lock: listeners run one transition at a time, in order. A listener that records
only enqueues (the dispatch lock is taken) and the outer delivery hands it on next: no deadlock, no
re-ordering. Consequence: a ``record()`` may return before its transitions reached the listeners when
another thread is delivering at that moment.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable

from .._internal import report_internal_error
from .types import HealthListener, HealthTransition


class Dispatcher:
    def __init__(self) -> None:
        self._listeners: tuple[HealthListener, ...] = ()
        self._pending: deque[HealthTransition] = deque()
        self._lock = threading.Lock()  # the listeners tuple is replaced, never mutated
        self._delivering = threading.Lock()

    def subscribe(self, listener: HealthListener) -> Callable[[], None]:
        with self._lock:
            self._listeners = (*self._listeners, listener)
        return lambda: self.unsubscribe(listener)

    def unsubscribe(self, listener: HealthListener) -> None:
        with self._lock:
            listeners = list(self._listeners)
            if listener in listeners:
                listeners.remove(listener)
            self._listeners = tuple(listeners)

    def enqueue(self, transitions: Iterable[HealthTransition]) -> None:
        """Called under the registry's lock."""
        self._pending.extend(transitions)

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def deliver(self) -> None:
        """Called without the registry's lock, when ``pending``."""
        pending = self._pending
        while pending:
            if not self._delivering.acquire(blocking=False):
                return  # another thread (or an outer frame of this one) is delivering; it sees ours
            try:
                while pending:
                    transition = pending.popleft()
                    for listener in self._listeners:
                        try:
                            listener(transition)
                        except Exception:
                            report_internal_error("HealthRegistry listener")
            finally:
                self._delivering.release()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._delivering = threading.Lock()
