"""Ends of calls deferred out of a garbage collection.

A finalizer run by the cyclic garbage collector (an abandoned stream's ``__del__``, a generator closed
by the GC) runs in whatever thread allocated at that moment, possibly inside one of our own locked
sections (the registry's lock, the span processor's) or an SDK's: ending a call there would take that
non-reentrant lock again and deadlock the thread, and with it every later call. So a ``finish`` called
during a collection is queued (``SimpleQueue.put`` is reentrant) and run at the next safe point: the
next ``start_call``, the next ``finish`` outside a collection, ``force_flush()`` or ``shutdown()``.
"""

from __future__ import annotations

import gc
import queue
from collections.abc import Callable, Mapping
from typing import Final

from .._internal import guarded

collecting = False  # a collection is running (read directly by ``finish``: one global load)
_jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()


def _gc_phase(phase: str, _info: Mapping[str, int]) -> None:
    global collecting
    collecting = phase == "start"


gc.callbacks.append(_gc_phase)


def defer(job: Callable[[], None]) -> None:
    _jobs.put(job)


# Checked on every call: the queue's own method, so the check costs no Python frame.
idle: Final = _jobs.empty


def run_deferred() -> None:
    """Finish the calls whose end was deferred out of a garbage collection."""
    while not collecting:
        try:
            job = _jobs.get_nowait()
        except queue.Empty:
            return
        with guarded("measurement.deferred"):
            job()
