"""HealthMonitor: runs health probes on a schedule, in a background thread or in the caller's event loop.

Scheduling: one scheduler coroutine keeps a due time per registered probe (interval ± jitter, so replicas
started together drift apart) and sleeps until the earliest one, or until woken: by ``stop()``, by a
finished probe freeing a concurrency slot, or by a breaker whose OPEN wait ends (the probe then starts
right after half-open began, so it is a trial). In thread mode the scheduler runs in its own event loop
in one thread; sync probes always run in a short-lived worker thread each, async probes as tasks.

Timeouts: a probe run longer than ``timeout_s`` is one ``timeout`` failure, recorded by the monitor. What
the probe reports after its deadline is dropped when it records through ``monitor.recorder`` (the
built-in probes do; pass it to ``probe(registry=...)`` / ``instrument_client(registry=...)`` for your
own). An async probe is cancelled at its deadline; a sync one cannot be, so its worker thread is left to
finish and the same probe is not started again until it has (at most one thread per probe).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import os
import random as _random
import threading
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Protocol, Self, runtime_checkable

from opentelemetry import metrics, trace

from .. import defaults, semconv
from .._internal import report_internal_error
from ..health.types import BreakerState, CallResult, HealthRecorder, ModelHealthState
from ..keys import DIRECT_GATEWAY, ModelKey
from ..outcomes import TIMEOUT, Classification, Outcome
from .selection import ProbeCandidate, Selection, Selector, resolve_selection

logger: Final = logging.getLogger("otel_model_health.probes")

PROBE_FAILED: Final = "probe_failed"  # error.type of a plain probe that returned False
_HALF_OPEN_MARGIN_S: Final = 0.01  # start a half-open probe this long after the OPEN wait ends
_MAX_STOP_WAIT_S: Final = 5.0
_DECORATORS_MODULE: Final = "otel_model_health.instrument.decorators.wrappers"


@runtime_checkable
class MonitorAwareProbe(Protocol):
    """A probe that knows its model and records through the monitor (the built-in probes)."""

    @property
    def key(self) -> ModelKey: ...

    def bind_monitor(self, *, recorder: HealthRecorder, timeout_s: float) -> None: ...

    async def __call__(self) -> object: ...

    async def aclose(self) -> None: ...


class ProbeRun:
    """One execution of one probe. ``timed_out`` flips once, under ``lock``, at the deadline."""

    __slots__ = ("key", "lock", "measurement", "started_at", "timed_out")

    def __init__(self, key: ModelKey, started_at: float) -> None:
        self.key = key
        self.started_at = started_at
        self.lock = threading.RLock()
        self.timed_out = False
        self.measurement: Any = None  # the monitor's own CallMeasurement for a plain probe


_CURRENT_RUN: Final[contextvars.ContextVar[ProbeRun | None]] = contextvars.ContextVar(
    "otel_model_health.probe_run", default=None
)


class GuardedRecorder:
    """A ``HealthRecorder`` that forwards to the registry, except outcomes of a probe run that already
    timed out (the monitor recorded the timeout; a late result would count the run twice)."""

    def __init__(self, registry: HealthRecorder) -> None:
        self._registry = registry
        self.dropped = 0

    def now(self) -> float:
        return self._registry.now()

    def has_succeeded(self, key: ModelKey) -> bool:
        return self._registry.has_succeeded(key)

    def tracks(self, key: ModelKey) -> bool:
        return self._registry.tracks(key)

    def record_result(self, key: ModelKey, result: CallResult) -> None:
        run = _CURRENT_RUN.get()
        if run is not None:
            with run.lock:
                if run.timed_out:
                    self.dropped += 1
                    return
        self._registry.record_result(key, result)


@dataclass(eq=False)
class _Probe:
    fn: Callable[[], Any]
    key: ModelKey
    is_async: bool
    instrumented: bool  # the probe's own instrumentation records its outcome
    operation_name: str
    next_due: float
    busy: bool = False  # a run, or the abandoned worker thread of a timed-out one, is still alive
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@dataclass
class MonitorStats:
    """Counters since the monitor was created (read them in tests or a debug endpoint)."""

    runs: int = 0
    skipped: int = 0  # due, but the selection said no (fresh traffic)
    timeouts: int = 0
    errors: int = 0  # probes that raised (their outcome is recorded by the instrumentation)
    abandoned_threads: int = 0  # sync probe threads still running when stop() gave up waiting


def _is_instrumented(fn: object) -> bool:
    """True for callables wrapped by our ``probe`` / ``monitor`` decorators: they record themselves."""
    wrapper = getattr(fn, "_self_wrapper", None)  # wrapt.FunctionWrapper (and its bound form)
    return getattr(wrapper, "__module__", None) == _DECORATORS_MODULE


def _is_async_callable(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


_MONITORS: Final[weakref.WeakSet[HealthMonitor]] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The scheduler thread, its loop and the worker threads do not exist in the child: forget them so
    # start() works there. Sockets of built-in probe clients belong to the parent: they are dropped
    # unclosed when the clients are re-created.
    for monitor in list(_MONITORS):
        monitor._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class HealthMonitor:
    """Runs health probes on a schedule. See docs/probes.md.

    ``clock`` (monotonic seconds) defaults to the registry's clock, ``sleep`` to ``asyncio.sleep`` and
    ``random`` (a float in [0, 1)) to ``random.random``; inject them to drive the schedule in tests.
    """

    def __init__(
        self,
        *,
        registry: Any = None,
        interval_s: float = 30.0,
        jitter: float = 0.1,
        timeout_s: float = 10.0,
        max_concurrency: int = 4,
        trial_interval_s: float = 1.0,
        select: Selection = "due",
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        random: Callable[[], float] | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency!r}")
        self.registry = registry if registry is not None else defaults.default_registry()
        self.recorder = GuardedRecorder(self.registry)
        self.interval_s = float(interval_s)
        self.jitter = float(jitter)
        self.timeout_s = float(timeout_s)
        self.max_concurrency = int(max_concurrency)
        self.trial_interval_s = min(float(trial_interval_s), self.interval_s)
        self._select: Selector = resolve_selection(select)
        self._clock: Callable[[], float] = clock if clock is not None else self.registry.now
        self._sleep: Callable[[float], Awaitable[None]] = sleep if sleep is not None else asyncio.sleep
        self._random: Callable[[], float] = random if random is not None else _random.random
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._instruments: Any = None
        self.stats = MonitorStats()

        self._lock = threading.Lock()  # guards the probe list and the start/stop state
        self._probes: list[_Probe] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop_requested = False
        self._running = False
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._workers: set[threading.Thread] = set()
        _MONITORS.add(self)

    # --- registration -------------------------------------------------------------------------
    def add(
        self,
        probe: Callable[[], Any],
        *,
        provider: str | None = None,
        model: str | None = None,
        gateway: str | None = None,
        operation: str = semconv.OP_CHAT,
        instrumented: bool | None = None,
    ) -> ModelKey:
        """Register a probe for one model; returns its key.

        ``probe`` is a no-argument callable, sync or async. A built-in probe brings its own model key. A
        callable decorated with ``probe(...)`` (or one whose calls go through an instrumented client:
        pass ``instrumented=True``) records its own outcome; for any other callable the monitor measures
        the call itself: returning ``False`` or raising is a failure, anything else a success.
        ``operation`` is the ``gen_ai.operation.name`` of the span the monitor makes for a plain callable.
        """
        if isinstance(probe, MonitorAwareProbe):
            base = probe.key
            key = ModelKey(
                provider=provider if provider is not None else base.provider,
                model=model if model is not None else base.model,
                gateway=gateway if gateway is not None else base.gateway,
            )
            probe.bind_monitor(recorder=self.recorder, timeout_s=self.timeout_s)
            is_instrumented = True if instrumented is None else instrumented
            closers: list[Callable[[], Awaitable[None]]] = [probe.aclose]
        else:
            if provider is None or model is None:
                raise ValueError("add() needs provider= and model= for a callable probe")
            key = ModelKey(provider=provider, model=model, gateway=gateway or DIRECT_GATEWAY)
            is_instrumented = _is_instrumented(probe) if instrumented is None else instrumented
            closers = []
        entry = _Probe(
            fn=probe,
            key=key,
            is_async=_is_async_callable(probe),
            instrumented=is_instrumented,
            operation_name=operation,
            # First run within [0, jitter × interval] of start: replicas started together spread out.
            next_due=float("-inf"),
            closers=closers,
        )
        with self._lock:
            self._probes.append(entry)
        self._wake_soon()
        return key

    def remove(self, *, provider: str, model: str, gateway: str | None = None) -> bool:
        """Unregister every probe of one model (a run in progress finishes). True if any was removed."""
        key = ModelKey(provider=provider, model=model, gateway=gateway or DIRECT_GATEWAY)
        with self._lock:
            before = len(self._probes)
            self._probes = [p for p in self._probes if p.key != key]
            return len(self._probes) != before

    @property
    def keys(self) -> list[ModelKey]:
        with self._lock:
            return [p.key for p in self._probes]

    # --- thread mode --------------------------------------------------------------------------
    def start(self) -> Self:
        """Run the scheduler in a background thread (its own event loop). Idempotent."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            if self._running:
                raise RuntimeError("HealthMonitor is already running in an event loop")
            self._stop_requested = False
            started = threading.Event()
            thread = threading.Thread(
                target=self._thread_main, args=(started,), name="otel-model-health-monitor", daemon=True
            )
            self._thread = thread
            thread.start()
        started.wait(_MAX_STOP_WAIT_S)
        return self

    def _thread_main(self, started: threading.Event) -> None:
        try:
            asyncio.run(self._run(started))
        except Exception:
            report_internal_error("HealthMonitor.thread")
        finally:
            started.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the scheduler (waking it if it sleeps), cancel async probes, close the built-in probes'
        clients, and wait for sync probe threads (up to ``timeout``, default ``timeout_s``)."""
        wait = self._stop_wait(timeout)
        self._request_stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)
            with self._lock:
                if self._thread is thread and not thread.is_alive():
                    self._thread = None
        self._join_workers(wait)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- asyncio mode -------------------------------------------------------------------------
    async def run(self) -> None:
        """Run the scheduler in the current event loop until ``stop()`` / ``aclose()`` or cancellation."""
        await self._run(None)

    def start_async(self) -> asyncio.Task[None]:
        """Start ``run()`` as a task of the running loop; ``await monitor.aclose()`` ends it."""
        with self._lock:
            if self._task is not None and not self._task.done():
                return self._task
            if self._running:
                raise RuntimeError("HealthMonitor is already running")
            self._stop_requested = False
            self._task = asyncio.get_running_loop().create_task(self.run(), name="otel-model-health-monitor")
            return self._task

    async def aclose(self, timeout: float | None = None) -> None:
        """Stop, and wait for the scheduler task and sync probe threads (see ``stop``)."""
        wait = self._stop_wait(timeout)
        self._request_stop()
        task = self._task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
            self._task = None
        thread = self._thread
        if thread is not None:  # started in thread mode, closed from a loop
            await asyncio.to_thread(self.stop, wait)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while self._live_workers() and loop.time() < deadline:
            await asyncio.sleep(0.01)
        self._join_workers(0)

    async def __aenter__(self) -> Self:
        self.start_async()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def running(self) -> bool:
        return self._running

    # --- the scheduler ------------------------------------------------------------------------
    async def _run(self, started: threading.Event | None) -> None:
        with self._lock:
            if self._running:
                raise RuntimeError("HealthMonitor is already running")
            self._running = True
            self._wake = asyncio.Event()
            self._loop = asyncio.get_running_loop()
        if started is not None:
            started.set()
        try:
            while not self._stop_requested:
                self._wake.clear()
                delay = self.tick()
                await self._wait(delay)
        finally:
            await self._shutdown()
            with self._lock:
                self._running = False
                self._loop = None
                self._wake = None
                self._stop_requested = False

    def tick(self) -> float:
        """Start every due probe that fits under the concurrency cap; return seconds until the next
        due time. Called by the scheduler; call it yourself (inside the loop) to drive a test."""
        now = self._clock()
        with self._lock:
            probes = sorted(self._probes, key=lambda p: p.next_due)
        for p in probes:
            if p.next_due == float("-inf"):
                p.next_due = now + self.interval_s * self.jitter * self._random_unit()
        for p in sorted(probes, key=lambda p: p.next_due):
            if p.busy or p.next_due > now:
                continue
            if len(self._inflight) >= self.max_concurrency:
                break  # stays due: a finishing probe wakes the scheduler
            p.next_due = now + self._next_interval()
            state, launch = self._decide(p)
            if launch:
                self._launch(p)
            else:
                self.stats.skipped += 1
            self._pull_in_for_breaker(p, state, now)
        # A busy probe wakes the scheduler when it ends; until then only its future due time counts.
        waiting = [p.next_due for p in probes if not p.busy or p.next_due > now]
        if not waiting:
            return self.interval_s
        return max(0.0, min(waiting) - now)

    async def drain(self) -> None:
        """Wait until the probes started so far have finished or timed out."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    def _random_unit(self) -> float:
        try:
            return min(1.0, max(0.0, float(self._random())))
        except Exception:
            report_internal_error("HealthMonitor.random")
            return 0.5

    def _next_interval(self) -> float:
        return self.interval_s * (1.0 + self.jitter * (2.0 * self._random_unit() - 1.0))

    def _state(self, key: ModelKey) -> ModelHealthState | None:
        state: ModelHealthState | None = self.registry.get(
            provider=key.provider, model=key.model, gateway=key.gateway
        )
        return state

    def _since(self, epoch_s: float) -> float:
        """Seconds between a wall-clock time of a snapshot and now, on the registry's clock."""
        to_monotonic = getattr(self.registry, "to_monotonic", None)
        if callable(to_monotonic):
            return float(self.registry.now() - to_monotonic(epoch_s))
        import time

        return time.time() - epoch_s

    def _decide(self, p: _Probe) -> tuple[ModelHealthState | None, bool]:
        try:
            state = self._state(p.key)
            age = (
                None if state is None or state.last_outcome_at is None else self._since(state.last_outcome_at)
            )
            candidate = ProbeCandidate(
                key=p.key, state=state, since_last_outcome_s=age, interval_s=self.interval_s
            )
            return state, bool(self._select(candidate))
        except Exception:
            report_internal_error("HealthMonitor.select")
            return None, True

    def _pull_in_for_breaker(self, p: _Probe, state: ModelHealthState | None, now: float) -> None:
        # An OPEN breaker needs calls started after half-open begins: schedule one right then rather than
        # up to an interval later. HALF_OPEN needs several trials: run them trial_interval_s apart.
        try:
            if state is None:
                return
            if state.breaker_state is BreakerState.HALF_OPEN:
                p.next_due = min(p.next_due, now + self.trial_interval_s)
                return
            if state.breaker_state is not BreakerState.OPEN or state.open_until is None:
                return
            wait = -self._since(state.open_until)
            if wait > 0:
                p.next_due = min(p.next_due, now + wait + _HALF_OPEN_MARGIN_S)
        except Exception:
            report_internal_error("HealthMonitor.breaker_schedule")

    async def _wait(self, delay: float) -> None:
        wake = self._wake
        if wake is None or wake.is_set():
            return
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

    def _wake_soon(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing to wake
            loop.call_soon_threadsafe(wake.set)

    def _request_stop(self) -> None:
        with self._lock:
            pending = self._running or (self._task is not None and not self._task.done())
            if self._thread is not None and self._thread.is_alive():
                pending = True
            if pending:
                self._stop_requested = True
        self._wake_soon()

    def _stop_wait(self, timeout: float | None) -> float:
        return min(self.timeout_s, _MAX_STOP_WAIT_S) if timeout is None else max(0.0, timeout)

    # --- running one probe --------------------------------------------------------------------
    def _launch(self, p: _Probe) -> None:
        p.busy = True
        self.stats.runs += 1
        run = ProbeRun(p.key, self._registry_now())
        task = asyncio.get_running_loop().create_task(self._execute(p, run))
        self._inflight.add(task)
        task.add_done_callback(self._on_task_done)

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        wake = self._wake
        if wake is not None:
            wake.set()

    def _registry_now(self) -> float:
        try:
            return float(self.registry.now())
        except Exception:
            report_internal_error("HealthMonitor.now")
            return 0.0

    async def _execute(self, p: _Probe, run: ProbeRun) -> None:
        ctx = contextvars.copy_context()
        ctx.run(_CURRENT_RUN.set, run)
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

    async def _execute_async(self, p: _Probe, run: ProbeRun, ctx: contextvars.Context) -> None:
        inner = asyncio.get_running_loop().create_task(self._call_async(p, run), context=ctx)
        try:
            done, _ = await asyncio.wait({inner}, timeout=self.timeout_s)
            if not done:
                self._on_timeout(p, run)
        finally:
            # Reached at the deadline (the run is marked timed out: its instrumentation's "cancelled"
            # outcome goes nowhere) and on stop (this task cancelled: a neutral "cancelled" outcome).
            if not inner.done():
                inner.cancel()
                await asyncio.wait({inner}, timeout=_MAX_STOP_WAIT_S)
            p.busy = False

    async def _call_async(self, p: _Probe, run: ProbeRun) -> None:
        measurement = self._start_measurement(p, run)
        token = measurement.activate() if measurement is not None else None
        try:
            result = await p.fn()
        except BaseException as exc:
            self._finish(run, exception=exc)
            if not isinstance(exc, Exception):
                raise
            self._probe_raised(p)
        else:
            self._finish(run, result=result)
        finally:
            if token is not None and measurement is not None:
                measurement.deactivate(token)

    async def _execute_sync(self, p: _Probe, run: ProbeRun, ctx: contextvars.Context) -> None:
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
        done, _ = await asyncio.wait({finished}, timeout=self.timeout_s)
        if not done:
            self._on_timeout(p, run)  # the thread runs on; it clears p.busy when it ends

    def _thread_probe(
        self,
        p: _Probe,
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
            # (it still runs the lines below); _live_workers() forgets ended threads.
            with contextlib.suppress(RuntimeError):  # the loop is gone (stopped): nobody waits
                loop.call_soon_threadsafe(_resolve, finished)
            self._wake_soon()

    def _call_sync(self, p: _Probe, run: ProbeRun) -> None:
        measurement = self._start_measurement(p, run)
        token = measurement.activate() if measurement is not None else None
        try:
            result = p.fn()
            if inspect.isawaitable(result):
                # A sync callable that returned a coroutine (e.g. a lambda around an async function).
                result = asyncio.run(_awaited(result))
        except Exception as exc:
            self._finish(run, exception=exc)
            self._probe_raised(p)
        else:
            self._finish(run, result=result)
        finally:
            if token is not None and measurement is not None:
                measurement.deactivate(token)

    def _probe_raised(self, p: _Probe) -> None:
        self.stats.errors += 1
        # The exception is the probe's outcome, already recorded; the message may hold anything the
        # provider said, so only its place is logged.
        logger.debug("otel_model_health: probe for %s raised", p.key)

    # --- outcomes -----------------------------------------------------------------------------
    def _start_measurement(self, p: _Probe, run: ProbeRun) -> Any:
        if p.instrumented:
            return None
        try:
            from ..instrument.instruments import instruments_for
            from ..instrument.measurement import start_call

            if self._instruments is None:
                self._instruments = instruments_for(
                    registry=self.registry,
                    tracer_provider=self._tracer_provider,
                    meter_provider=self._meter_provider,
                )
            run.measurement = start_call(
                self._instruments,
                key=p.key,
                operation_name=p.operation_name,
                health_operation=semconv.OPERATION_HEALTH_CHECK,
            )
        except Exception:
            report_internal_error("HealthMonitor.measurement")
            run.measurement = None
        return run.measurement

    def _finish(
        self, run: ProbeRun, *, result: object = None, exception: BaseException | None = None
    ) -> None:
        """End a plain probe's own measurement, unless the deadline already ended it."""
        measurement = run.measurement
        if measurement is None:
            return
        with run.lock:
            if run.timed_out:
                return
            try:
                if exception is not None:
                    measurement.finish(exception=exception)
                elif result is False:
                    measurement.finish(classification=Classification(Outcome.FAILURE, PROBE_FAILED))
                else:
                    measurement.finish()
            except Exception:
                report_internal_error("HealthMonitor.finish")

    def _on_timeout(self, p: _Probe, run: ProbeRun) -> None:
        """The deadline passed: one ``timeout`` failure for this run, and nothing from it afterwards."""
        with run.lock:
            if run.timed_out:
                return
            run.timed_out = True
            self.stats.timeouts += 1
            message = f"health probe exceeded {self.timeout_s:g} s"
            try:
                if run.measurement is not None:
                    run.measurement.finish(
                        exception=TimeoutError(message),
                        classification=Classification(Outcome.FAILURE, TIMEOUT),
                    )
                else:
                    self.registry.record(
                        p.key,
                        Outcome.FAILURE,
                        operation=semconv.OPERATION_HEALTH_CHECK,
                        error_type=TIMEOUT,
                        error_message=message,
                        latency_s=self.timeout_s,
                        started_at=run.started_at,
                    )
            except Exception:
                report_internal_error("HealthMonitor.timeout")

    # --- shutdown -----------------------------------------------------------------------------
    async def _shutdown(self) -> None:
        tasks = list(self._inflight)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()
        with self._lock:
            probes = list(self._probes)
        for p in probes:
            if p.is_async:
                p.busy = False
            for close in p.closers:
                try:
                    await close()
                except Exception:
                    report_internal_error("HealthMonitor.close_probe")

    def _live_workers(self) -> list[threading.Thread]:
        with self._lock:
            self._workers = {t for t in self._workers if t.is_alive()}
            return list(self._workers)

    def _join_workers(self, wait: float) -> None:
        workers = self._live_workers()
        if not workers:
            return
        import time

        deadline = time.monotonic() + wait
        for thread in workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = self._live_workers()
        if left:
            self.stats.abandoned_threads += len(left)
            logger.debug("otel_model_health: %d sync probe thread(s) still running after stop", len(left))

    def _forget_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._thread = None
        self._task = None
        self._loop = None
        self._wake = None
        self._running = False
        self._stop_requested = False
        self._inflight = set()
        self._workers = set()
        for p in self._probes:
            p.busy = False


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
