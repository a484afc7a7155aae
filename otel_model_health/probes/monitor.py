"""HealthMonitor: runs health probes on a schedule, in a background thread or in the caller's event loop.

The parts, each in its module: ``schedule.py`` keeps a due time per probe on a monotonic clock and asks
the selection whether a due probe runs; ``runner.py`` runs it under the deadline (async probes as tasks,
sync ones in a worker thread each); ``runs.py`` records what a run's outcome is, and makes a timed-out
run count once; ``lifecycle.py`` starts and stops the scheduler loop and wakes it early (a stop, a freed
concurrency slot, a new probe). This class puts them together behind the public API (docs/probes.md).
"""

from __future__ import annotations

import asyncio
import inspect
import random as _random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from opentelemetry import metrics, trace

from .. import defaults, semconv
from .._context import StartStop
from .._internal import report_internal_error
from ..health.types import HealthRecorder, ModelHealthState
from ..instrument.decorators.wrappers import MEASURED_MARKER
from ..keys import DIRECT_GATEWAY, ModelKey
from .lifecycle import Lifecycle
from .runner import MAX_STOP_WAIT_S, ProbeRunner
from .runs import GuardedRecorder, MonitorRegistry, MonitorStats, RunOutcomes
from .schedule import Schedule, ScheduledProbe
from .selection import Selection, resolve_selection


@runtime_checkable
class MonitorAwareProbe(Protocol):
    """A probe that knows its model and records through the monitor (the built-in probes)."""

    @property
    def key(self) -> ModelKey: ...

    def bind_monitor(self, *, recorder: HealthRecorder, timeout_s: float) -> None: ...

    async def __call__(self) -> object: ...

    async def aclose(self) -> None: ...


class HealthMonitor(StartStop):
    """Runs health probes on a schedule. See docs/probes.md.

    ``clock`` (monotonic seconds) defaults to the registry's clock, ``sleep`` to ``asyncio.sleep`` and
    ``random`` (a float in [0, 1)) to ``random.random``; inject them to drive the schedule in tests.
    """

    def __init__(
        self,
        *,
        registry: MonitorRegistry | None = None,
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
        self.registry: MonitorRegistry = registry if registry is not None else defaults.default_registry()
        self.recorder = GuardedRecorder(self.registry)
        self.interval_s = float(interval_s)
        self.jitter = float(jitter)
        self.timeout_s = float(timeout_s)
        self.max_concurrency = int(max_concurrency)
        self.trial_interval_s = min(float(trial_interval_s), self.interval_s)
        self.stats = MonitorStats()
        self._clock: Callable[[], float] = clock if clock is not None else self.registry.now
        self._schedule = Schedule(
            interval_s=self.interval_s,
            jitter=self.jitter,
            trial_interval_s=self.trial_interval_s,
            select=resolve_selection(select),
            random=random if random is not None else _random.random,
            lookup=self._state,
        )
        self._life = Lifecycle(
            step=self.tick,
            sleep=sleep if sleep is not None else asyncio.sleep,
            on_stop=self._on_stop,
            after_fork=self._forget_runs,
        )
        outcomes = RunOutcomes(
            self.registry,
            timeout_s=self.timeout_s,
            stats=self.stats,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        )
        self._runner = ProbeRunner(
            outcomes,
            now=self.registry.now,
            timeout_s=self.timeout_s,
            stats=self.stats,
            wake=self._life.wake_soon,
        )

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
        closers: tuple[Callable[[], Awaitable[None]], ...] = ()
        if isinstance(probe, MonitorAwareProbe):
            base = probe.key
            key = ModelKey(
                provider=provider if provider is not None else base.provider,
                model=model if model is not None else base.model,
                gateway=gateway if gateway is not None else base.gateway,
            )
            probe.bind_monitor(recorder=self.recorder, timeout_s=self.timeout_s)
            measured = True
            closers = (probe.aclose,)
        else:
            if provider is None or model is None:
                raise ValueError("add() needs provider= and model= for a callable probe")
            key = ModelKey(provider=provider, model=model, gateway=gateway or DIRECT_GATEWAY)
            measured = getattr(probe, MEASURED_MARKER, False) is True  # set by our decorators
        self._schedule.add(
            ScheduledProbe(
                fn=probe,
                key=key,
                is_async=_is_async_callable(probe),
                instrumented=measured if instrumented is None else instrumented,
                operation_name=operation,
                closers=closers,
            )
        )
        self._life.wake_soon()
        return key

    def remove(self, *, provider: str, model: str, gateway: str | None = None) -> bool:
        """Unregister every probe of one model (a run in progress finishes). True if any was removed."""
        return self._schedule.remove(
            ModelKey(provider=provider, model=model, gateway=gateway or DIRECT_GATEWAY)
        )

    @property
    def keys(self) -> list[ModelKey]:
        return [p.key for p in self._schedule.probes()]

    # --- thread mode --------------------------------------------------------------------------
    def start(self) -> Self:
        """Run the scheduler in a background thread (its own event loop). Idempotent."""
        self._life.start_thread(MAX_STOP_WAIT_S)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop the scheduler (waking it if it sleeps), cancel async probes, close the built-in probes'
        clients, and wait for sync probe threads (up to ``timeout``, default ``timeout_s``)."""
        wait = self._stop_wait(timeout)
        self._life.stop_thread(wait)
        self._runner.join(wait)

    # --- asyncio mode -------------------------------------------------------------------------
    async def run(self) -> None:
        """Run the scheduler in the current event loop until ``stop()`` / ``aclose()`` or cancellation."""
        await self._life.run()

    def start_async(self) -> asyncio.Task[None]:
        """Start ``run()`` as a task of the running loop; ``await monitor.aclose()`` ends it."""
        return self._life.start_task()

    async def aclose(self, timeout: float | None = None) -> None:
        """Stop, and wait for the scheduler task and sync probe threads (see ``stop``)."""
        wait = self._stop_wait(timeout)
        await self._life.stop_task(wait)
        await self._runner.ajoin(wait)

    async def __aenter__(self) -> Self:
        self.start_async()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def running(self) -> bool:
        return self._life.running

    # --- one round ----------------------------------------------------------------------------
    def tick(self) -> float:
        """Start every due probe that fits under the concurrency cap; return seconds until the next
        due time. Called by the scheduler; call it yourself (inside the loop) to drive a test."""
        due = self._schedule.next_round(self._clock(), self.max_concurrency - self._runner.inflight)
        self.stats.skipped += due.skipped
        for p in due.start:
            self._runner.launch(p)
        return due.delay_s

    async def drain(self) -> None:
        """Wait until the probes started so far have finished or timed out."""
        await self._runner.drain()

    def _state(self, key: ModelKey) -> ModelHealthState | None:
        return self.registry.get(provider=key.provider, model=key.model, gateway=key.gateway)

    def _stop_wait(self, timeout: float | None) -> float:
        return min(self.timeout_s, MAX_STOP_WAIT_S) if timeout is None else max(0.0, timeout)

    async def _on_stop(self) -> None:
        await self._runner.cancel()
        for p in self._schedule.probes():
            if p.is_async:
                p.busy = False
            for close in p.closers:
                try:
                    await close()
                except Exception:
                    report_internal_error("HealthMonitor.close_probe")

    def _forget_runs(self) -> None:
        self._runner.forget()
        self._schedule.forget_runs()


def _is_async_callable(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
