"""What one probe run records, and the guarantee that a timed-out run counts once.

A run that passes ``timeout_s`` is one ``timeout`` failure, recorded by the monitor. What the probe
reports afterwards is dropped if it records through ``GuardedRecorder`` (``monitor.recorder``): the run
is found through a context variable set for the run, and its ``timed_out`` flag flips once, under the
run's lock, at the deadline. A plain probe (not instrumented) is measured by the monitor itself: a
``health_check`` span, the GenAI metrics and one outcome, ended by the probe or by the deadline, never
both.
"""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass
from typing import Final, Protocol

from opentelemetry import metrics, trace

from .. import semconv
from .._internal import report_internal_error
from ..health.types import CallResult, HealthRecorder, ModelHealthState
from ..instrument.instruments import Instruments, instruments_for
from ..instrument.measurement import CallMeasurement, start_call
from ..keys import DIRECT_GATEWAY, ModelKey
from ..outcomes import TIMEOUT, Classification, Outcome
from .schedule import ScheduledProbe

PROBE_FAILED: Final = "probe_failed"  # error.type of a plain probe that returned False


class MonitorRegistry(HealthRecorder, Protocol):
    """What ``HealthMonitor`` needs of a registry (``HealthRegistry`` is one): the recorder's methods, and
    a model's current state for the selection."""

    def get(self, *, provider: str, model: str, gateway: str = DIRECT_GATEWAY) -> ModelHealthState | None: ...


@dataclass
class MonitorStats:
    """Counters since the monitor was created (read them in tests or a debug endpoint)."""

    runs: int = 0
    skipped: int = 0  # due, but the selection said no (fresh traffic)
    timeouts: int = 0
    errors: int = 0  # probes that raised (their outcome is recorded by the instrumentation)
    abandoned_threads: int = 0  # sync probe threads still running when stop() gave up waiting


class ProbeRun:
    """One execution of one probe. ``timed_out`` flips once, under ``lock``, at the deadline."""

    __slots__ = ("key", "lock", "measurement", "started_at", "timed_out")

    def __init__(self, key: ModelKey, started_at: float) -> None:
        self.key = key
        self.started_at = started_at  # the registry's clock
        self.lock = threading.RLock()
        self.timed_out = False
        self.measurement: CallMeasurement | None = None  # the monitor's own, for a plain probe


CURRENT_RUN: Final[contextvars.ContextVar[ProbeRun | None]] = contextvars.ContextVar(
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
        run = CURRENT_RUN.get()
        if run is not None:
            with run.lock:
                if run.timed_out:
                    self.dropped += 1
                    return
        self._registry.record_result(key, result)


class RunOutcomes:
    """Starts and ends the monitor's measurement of a plain probe, and records a run's timeout."""

    def __init__(
        self,
        registry: MonitorRegistry,
        *,
        timeout_s: float,
        stats: MonitorStats,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
    ) -> None:
        self._registry = registry
        self._timeout_s = timeout_s
        self._stats = stats
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._instruments: Instruments | None = None  # resolved at the first plain probe's run

    def begin(self, p: ScheduledProbe, run: ProbeRun) -> CallMeasurement | None:
        """The monitor's measurement of a plain probe's run (None for an instrumented one)."""
        if p.instrumented:
            return None
        try:
            if self._instruments is None:
                # The registry itself, not the guarded recorder: the deadline ends this measurement with
                # the run already marked timed out.
                self._instruments = instruments_for(
                    registry=self._registry,
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

    def end(self, run: ProbeRun, *, result: object = None, exception: BaseException | None = None) -> None:
        """End a plain probe's measurement with what it returned or raised, unless the deadline ended it."""
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

    def time_out(self, run: ProbeRun) -> None:
        """The deadline passed: one ``timeout`` failure for this run, and nothing from it afterwards."""
        with run.lock:
            if run.timed_out:
                return
            run.timed_out = True
            self._stats.timeouts += 1
            message = f"health probe exceeded {self._timeout_s:g} s"
            try:
                if run.measurement is not None:
                    run.measurement.finish(
                        exception=TimeoutError(message),
                        classification=Classification(Outcome.FAILURE, TIMEOUT),
                    )
                else:
                    result = CallResult(
                        Outcome.FAILURE,
                        health_operation=semconv.OPERATION_HEALTH_CHECK,
                        error_type=TIMEOUT,
                        error_message=message,
                        latency_s=self._timeout_s,
                        started_at=run.started_at,
                    )
                    self._registry.record_result(run.key, result)
            except Exception:
                report_internal_error("HealthMonitor.timeout")
