"""Runs probes under a deadline: async ones as tasks of the scheduler's loop, sync ones in a worker thread
each.

An async probe is cancelled at its deadline (or on stop: its outcome is then a neutral ``cancelled``).
A sync probe cannot be interrupted: its worker thread runs on, its probe stays busy (not started again)
until the thread has ended, and ``stop()`` joins it. Only the concurrency slot is freed at the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Final

from .._internal import report_internal_error
from ..instrument.measurement import CallMeasurement
from .runs import CURRENT_RUN, MonitorStats, ProbeRun, RunOutcomes
from .schedule import ScheduledProbe

logger: Final = logging.getLogger("otel_model_health.probes")

MAX_STOP_WAIT_S: Final = 5.0


class ProbeRunner:
    """Starts runs and keeps track of them: the in-flight tasks and the sync probes' worker threads."""

    def __init__(
        self,
        outcomes: RunOutcomes,
        *,
        now: Callable[[], float],
        timeout_s: float,
        stats: MonitorStats,
        wake: Callable[[], None],
    ) -> None:
        self._outcomes = outcomes
        self._now = now  # the registry's clock: a run's started_at
        self._timeout_s = timeout_s
        self._stats = stats
        self._wake = wake  # tells the scheduler that a slot is free / a busy probe ended
        self._lock = threading.Lock()  # guards _workers
        self._inflight: set[asyncio.Task[None]] = set()
        self._workers: set[threading.Thread] = set()

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def launch(self, p: ScheduledProbe) -> None:
        """Start one run of ``p`` in the running loop."""
        p.busy = True
        self._stats.runs += 1
        run = ProbeRun(p.key, self._started_at())
        task = asyncio.get_running_loop().create_task(self._execute(p, run))
        self._inflight.add(task)
        task.add_done_callback(self._on_task_done)

    async def drain(self) -> None:
        """Wait until the runs started so far have finished or timed out."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    async def cancel(self) -> None:
        """Cancel the in-flight runs and wait for them (sync probes' threads run on: see ``join``)."""
        tasks = list(self._inflight)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()

    def live_workers(self) -> list[threading.Thread]:
        with self._lock:
            self._workers = {t for t in self._workers if t.is_alive()}
            return list(self._workers)

    def join(self, wait: float) -> None:
        """Wait up to ``wait`` seconds for the sync probes' threads; count those still running."""
        workers = self.live_workers()
        if not workers:
            return
        deadline = time.monotonic() + wait
        for thread in workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = self.live_workers()
        if left:
            self._stats.abandoned_threads += len(left)
            logger.debug("otel_model_health: %d sync probe thread(s) still running after stop", len(left))

    async def ajoin(self, wait: float) -> None:
        """``join`` without blocking the running loop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while self.live_workers() and loop.time() < deadline:
            await asyncio.sleep(0.01)
        self.join(0)

    def forget(self) -> None:
        """After fork(): the parent's tasks and threads do not exist in the child."""
        self._lock = threading.Lock()
        self._inflight = set()
        self._workers = set()

    def _started_at(self) -> float:
        try:
            return float(self._now())
        except Exception:
            report_internal_error("HealthMonitor.now")
            return 0.0

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake()

    async def _execute(self, p: ScheduledProbe, run: ProbeRun) -> None:
        ctx = contextvars.copy_context()
        ctx.run(CURRENT_RUN.set, run)
        try:
            if p.is_async:
                await self._execute_async(p, run, ctx)
            else:
                await self._execute_sync(p, run, ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            report_internal_error("HealthMonitor.execute")
            p.busy = False

    async def _execute_async(self, p: ScheduledProbe, run: ProbeRun, ctx: contextvars.Context) -> None:
        inner = asyncio.get_running_loop().create_task(self._call_async(p, run), context=ctx)
        try:
            done, _ = await asyncio.wait({inner}, timeout=self._timeout_s)
            if not done:
                self._outcomes.time_out(run)
        finally:
            # Reached at the deadline (the run is marked timed out: its instrumentation's "cancelled"
            # outcome goes nowhere) and on stop (this task cancelled: a neutral "cancelled" outcome).
            if not inner.done():
                inner.cancel()
                await asyncio.wait({inner}, timeout=MAX_STOP_WAIT_S)
            p.busy = False

    async def _call_async(self, p: ScheduledProbe, run: ProbeRun) -> None:
        measurement = self._outcomes.begin(p, run)
        token = _activate(measurement)
        try:
            result = await p.fn()
        except BaseException as exc:
            self._outcomes.end(run, exception=exc)
            if not isinstance(exc, Exception):
                raise
            self._probe_raised(p)
        else:
            self._outcomes.end(run, result=result)
        finally:
            CallMeasurement.deactivate(token)

    async def _execute_sync(self, p: ScheduledProbe, run: ProbeRun, ctx: contextvars.Context) -> None:
        loop = asyncio.get_running_loop()
        finished = loop.create_future()
        thread = threading.Thread(
            target=self._thread_probe,
            args=(p, run, ctx, loop, finished),
            name=f"otel-model-health-probe {p.key}",
            daemon=True,
        )
        with self._lock:
            self._workers = {t for t in self._workers if t.is_alive()}  # ended ones: bounded memory
            self._workers.add(thread)
        thread.start()
        # On stop this await is cancelled; the thread finishes on its own and stop() joins it.
        done, _ = await asyncio.wait({finished}, timeout=self._timeout_s)
        if not done:
            self._outcomes.time_out(run)  # the thread runs on; it clears p.busy when it ends

    def _thread_probe(
        self,
        p: ScheduledProbe,
        run: ProbeRun,
        ctx: contextvars.Context,
        loop: asyncio.AbstractEventLoop,
        finished: asyncio.Future[None],
    ) -> None:
        try:
            ctx.run(self._call_sync, p, run)
        except BaseException:
            report_internal_error("HealthMonitor.sync_probe")
        finally:
            p.busy = False
            # Not removed from _workers here: stop() must join this thread until it has really ended
            # (it still runs the lines below); live_workers() forgets ended threads.
            with contextlib.suppress(RuntimeError):  # the loop is gone (stopped): nobody waits
                loop.call_soon_threadsafe(_resolve, finished)
            self._wake()

    def _call_sync(self, p: ScheduledProbe, run: ProbeRun) -> None:
        measurement = self._outcomes.begin(p, run)
        token = _activate(measurement)
        try:
            result = p.fn()
            if inspect.isawaitable(result):
                # A sync callable that returned a coroutine (e.g. a lambda around an async function).
                result = asyncio.run(_coroutine(result))
        except Exception as exc:
            self._outcomes.end(run, exception=exc)
            self._probe_raised(p)
        else:
            self._outcomes.end(run, result=result)
        finally:
            CallMeasurement.deactivate(token)

    def _probe_raised(self, p: ScheduledProbe) -> None:
        self._stats.errors += 1
        # The exception is the probe's outcome, already recorded; the message may hold anything the
        # provider said, so only its place is logged.
        logger.debug("otel_model_health: probe for %s raised", p.key)


def _activate(measurement: CallMeasurement | None) -> object | None:
    return measurement.activate() if measurement is not None else None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _coroutine(awaitable: Awaitable[object]) -> object:
    """``asyncio.run`` takes a coroutine, not any awaitable."""
    return await awaitable
