"""Starting and stopping the scheduler loop: in a thread of its own, or as a task of the caller's loop.

The loop repeats ``step`` (which returns the seconds until it is needed again) and sleeps in between,
unless woken: by a stop request, or by ``wake_soon`` from any thread. After ``fork()`` the child has
none of the parent's threads or loop: every ``Lifecycle`` forgets them, so ``start()`` works there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Final

from .._internal import report_internal_error

THREAD_NAME: Final = "otel-model-health-monitor"


class Lifecycle:
    """One scheduler loop's start, stop and wake-up."""

    def __init__(
        self,
        *,
        step: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        on_stop: Callable[[], Awaitable[None]],
        after_fork: Callable[[], None],
    ) -> None:
        self._step = step
        self._sleep = sleep
        self._on_stop = on_stop  # runs in the loop before it ends
        self._after_fork = after_fork
        self._lock = threading.Lock()  # guards the start/stop state below
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop_requested = False
        self._running = False
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        _LIFECYCLES.add(self)

    @property
    def running(self) -> bool:
        return self._running

    # --- thread mode --------------------------------------------------------------------------
    def start_thread(self, wait: float) -> None:
        """Run the loop in a daemon thread with its own event loop; wait up to ``wait`` s for it to run."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            if self._running:
                raise RuntimeError("HealthMonitor is already running in an event loop")
            self._stop_requested = False
            started = threading.Event()
            thread = threading.Thread(
                target=self._thread_main, args=(started,), name=THREAD_NAME, daemon=True
            )
            self._thread = thread
            thread.start()
        started.wait(wait)

    def _thread_main(self, started: threading.Event) -> None:
        try:
            asyncio.run(self.run(started))
        except Exception:
            report_internal_error("HealthMonitor.thread")
        finally:
            started.set()

    def stop_thread(self, wait: float) -> None:
        """Request a stop and wait up to ``wait`` s for the loop's thread (if any) to end."""
        self.request_stop()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        thread.join(wait)
        with self._lock:
            if self._thread is thread and not thread.is_alive():
                self._thread = None

    # --- task mode ----------------------------------------------------------------------------
    def start_task(self) -> asyncio.Task[None]:
        """Run the loop as a task of the running event loop."""
        with self._lock:
            if self._task is not None and not self._task.done():
                return self._task
            if self._running:
                raise RuntimeError("HealthMonitor is already running")
            self._stop_requested = False
            self._task = asyncio.get_running_loop().create_task(self.run(), name=THREAD_NAME)
            return self._task

    async def stop_task(self, wait: float) -> None:
        """Request a stop and wait for the loop: its task, or its thread (without blocking this loop)."""
        self.request_stop()
        task = self._task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
            self._task = None
        if self._thread is not None:  # started in thread mode, stopped from a loop
            await asyncio.to_thread(self.stop_thread, wait)

    # --- the loop -----------------------------------------------------------------------------
    async def run(self, started: threading.Event | None = None) -> None:
        """Repeat ``step`` until a stop is requested (or the task is cancelled); then ``on_stop``."""
        with self._lock:
            if self._running:
                raise RuntimeError("HealthMonitor is already running")
            self._running = True
            wake = self._wake = asyncio.Event()
            self._loop = asyncio.get_running_loop()
        if started is not None:
            started.set()
        try:
            while not self._stop_requested:
                wake.clear()
                await self._nap(wake, self._step())
        finally:
            await self._on_stop()
            with self._lock:
                self._running = False
                self._loop = None
                self._wake = None
                self._stop_requested = False

    async def _nap(self, wake: asyncio.Event, delay: float) -> None:
        if wake.is_set():
            return
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

    def wake_soon(self) -> None:
        """Cut the loop's sleep short (callable from any thread)."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing to wake
            loop.call_soon_threadsafe(wake.set)

    def request_stop(self) -> None:
        with self._lock:
            pending = self._running or (self._task is not None and not self._task.done())
            if self._thread is not None and self._thread.is_alive():
                pending = True
            if pending:
                # Only then: a stop of a monitor that is not running must not pre-stop the next start.
                self._stop_requested = True
        self.wake_soon()

    def _forget_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._thread = None
        self._task = None
        self._loop = None
        self._wake = None
        self._running = False
        self._stop_requested = False
        self._after_fork()


_LIFECYCLES: Final[weakref.WeakSet[Lifecycle]] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The loop's thread, its loop and the probes' worker threads do not exist in the child.
    for lifecycle in list(_LIFECYCLES):
        lifecycle._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
