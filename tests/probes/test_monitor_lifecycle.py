"""HealthMonitor: timeouts, concurrency cap, start/stop in a thread and in an event loop, no leaks."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.instrument.decorators import probe
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.probes import HealthMonitor
from otel_model_health.testing import ManualClock

GPT = ModelKey(provider="openai", model="gpt-4o")


def _totals(registry: HealthRegistry, model: str = "gpt-4o") -> dict[tuple[str, Outcome], int]:
    state = registry.get(provider="openai", model=model)
    assert state is not None
    return {k: v for k, v in state.outcome_totals.items() if v}


def _tracing() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def test_hanging_async_probe_times_out_once() -> None:
    registry = HealthRegistry()
    tracer_provider, exporter = _tracing()
    monitor = HealthMonitor(registry=registry, timeout_s=0.05, jitter=0.0, tracer_provider=tracer_provider)
    never = asyncio.Event()

    async def hangs() -> None:
        await never.wait()

    monitor.add(hangs, provider="openai", model="gpt-4o")
    monitor.tick()
    await monitor.drain()
    assert monitor.stats.timeouts == 1
    assert _totals(registry) == {("health_check", Outcome.FAILURE): 1}
    state = registry.get(provider="openai", model="gpt-4o")
    assert state is not None and state.last_error is not None
    assert state.last_error.error_type == "timeout"
    (span,) = exporter.get_finished_spans()  # the monitor's own span for a plain probe
    assert span.attributes is not None
    assert span.attributes["error.type"] == "timeout"
    assert span.attributes["model_health.operation"] == "health_check"


async def test_hanging_sync_probe_times_out_and_its_late_result_is_not_counted() -> None:
    registry = HealthRegistry()
    monitor = HealthMonitor(registry=registry, timeout_s=0.05, interval_s=0.01, jitter=0.0)
    release = threading.Event()
    finished = threading.Event()

    def hangs() -> bool:
        release.wait(10)
        finished.set()
        return True

    monitor.add(hangs, provider="openai", model="gpt-4o")
    monitor.tick()
    await monitor.drain()
    assert monitor.stats.timeouts == 1
    assert monitor.tick() >= 0  # the same probe is not started again while its thread is alive
    assert monitor.stats.runs == 1
    release.set()
    assert await asyncio.to_thread(finished.wait, 5)
    await monitor.aclose()
    assert _totals(registry) == {("health_check", Outcome.FAILURE): 1}  # the late success was dropped


async def test_decorated_sync_probe_late_result_dropped_through_monitor_recorder() -> None:
    registry = HealthRegistry()
    monitor = HealthMonitor(registry=registry, timeout_s=0.05, jitter=0.0)
    release = threading.Event()
    calls: list[int] = []

    @probe(provider="openai", model="gpt-4o", registry=monitor.recorder)
    def check(model: str = "gpt-4o") -> str:
        calls.append(1)
        release.wait(10)
        return "ok"

    monitor.add(check, provider="openai", model="gpt-4o")
    monitor.tick()
    await monitor.drain()
    release.set()
    await monitor.aclose()
    assert calls == [1]
    assert monitor.recorder.dropped == 1  # the decorator's late success
    assert _totals(registry) == {("health_check", Outcome.FAILURE): 1}


async def test_decorated_probe_records_its_own_outcome() -> None:
    registry = HealthRegistry()
    tracer_provider, exporter = _tracing()
    monitor = HealthMonitor(registry=registry, jitter=0.0, tracer_provider=tracer_provider)

    @probe(provider="openai", model="gpt-4o", registry=monitor.recorder, tracer_provider=tracer_provider)
    async def check() -> str:
        raise ConnectionError("refused")

    monitor.add(check, provider="openai", model="gpt-4o")
    monitor.tick()
    await monitor.drain()
    assert monitor.stats.errors == 1
    assert _totals(registry) == {("health_check", Outcome.FAILURE): 1}
    (span,) = exporter.get_finished_spans()  # the decorator's span only: the monitor adds none
    assert span.attributes is not None
    assert span.attributes["error.type"] == "connection_error"


async def test_decorated_method_is_recognised_as_recording_itself() -> None:
    registry = HealthRegistry()
    tracer_provider, exporter = _tracing()
    monitor = HealthMonitor(registry=registry, jitter=0.0, tracer_provider=tracer_provider)

    class Checks:
        @probe(provider="openai", model="gpt-4o", registry=monitor.recorder, tracer_provider=tracer_provider)
        async def gpt(self) -> str:
            return "pong"

    monitor.add(Checks().gpt, provider="openai", model="gpt-4o")  # a bound method of a decorated one
    monitor.tick()
    await monitor.drain()
    assert _totals(registry) == {("health_check", Outcome.SUCCESS): 1}
    (span,) = exporter.get_finished_spans()  # the decorator's span only: the monitor adds none
    assert span.attributes is not None
    assert span.attributes["model_health.operation"] == "health_check"


async def test_plain_probe_returning_false_is_a_failure() -> None:
    registry = HealthRegistry()
    monitor = HealthMonitor(registry=registry, jitter=0.0)
    monitor.add(lambda: False, provider="openai", model="gpt-4o")
    monitor.add(lambda: None, provider="openai", model="gpt-4o-mini")
    monitor.tick()
    await monitor.drain()
    await monitor.aclose()
    assert _totals(registry) == {("health_check", Outcome.FAILURE): 1}
    state = registry.get(provider="openai", model="gpt-4o")
    assert state is not None and state.last_error is not None
    assert state.last_error.error_type == "probe_failed"
    assert _totals(registry, "gpt-4o-mini") == {("health_check", Outcome.SUCCESS): 1}


async def test_concurrency_cap() -> None:
    clock = ManualClock()
    registry = HealthRegistry(clock=clock)
    monitor = HealthMonitor(registry=registry, max_concurrency=2, jitter=0.0, clock=clock, select="always")
    gate = asyncio.Event()
    active = 0
    peak = 0
    done: list[str] = []

    def make(name: str):  # type: ignore[no-untyped-def]
        async def check() -> None:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await gate.wait()
            active -= 1
            done.append(name)

        return check

    for i in range(5):
        monitor.add(make(f"m{i}"), provider="openai", model=f"m{i}")
    monitor.tick()
    for _ in range(20):  # let the started probes reach their gate
        await asyncio.sleep(0)
    assert active == 2  # two started, three wait for a slot
    assert monitor.stats.runs == 2
    gate.set()
    while len(done) < 5:  # a finished probe frees a slot; the scheduler (here: us) starts the next
        await monitor.drain()
        monitor.tick()
    await monitor.drain()
    assert peak == 2
    assert sorted(done) == [f"m{i}" for i in range(5)]


async def test_thread_mode_stop_wakes_scheduler_and_leaves_no_threads() -> None:
    baseline = set(threading.enumerate())
    registry = HealthRegistry()
    ran = threading.Event()

    def check() -> bool:
        ran.set()
        return True

    monitor = HealthMonitor(registry=registry, interval_s=3600, jitter=0.0)
    monitor.add(check, provider="openai", model="gpt-4o")
    with monitor:
        assert _is_running(monitor)
        assert await asyncio.to_thread(ran.wait, 5)
    # stop() returned although the scheduler was asleep for an hour.
    assert not _is_running(monitor)
    assert set(threading.enumerate()) - baseline <= _default_executor_threads()
    assert _totals(registry) == {("health_check", Outcome.SUCCESS): 1}
    # Restartable, and stop() twice is harmless.
    monitor.start()
    monitor.stop()
    monitor.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("otel-model-health")]


def _is_running(monitor: HealthMonitor) -> bool:
    return monitor.running  # a call: mypy must not narrow across start/stop


def _default_executor_threads() -> set[threading.Thread]:
    # asyncio.to_thread above runs in the loop's default executor (owned by pytest-asyncio's loop).
    return {t for t in threading.enumerate() if t.name.startswith("asyncio_")}


async def test_async_mode_start_and_aclose_leave_no_tasks() -> None:
    registry = HealthRegistry()
    ran = asyncio.Event()
    cancelled: list[bool] = []

    async def check() -> None:
        ran.set()
        try:
            await asyncio.Event().wait()  # runs until the monitor stops
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    before = asyncio.all_tasks()
    monitor = HealthMonitor(registry=registry, interval_s=3600, jitter=0.0, timeout_s=60)
    monitor.add(check, provider="openai", model="gpt-4o")
    task = monitor.start_async()
    await asyncio.wait_for(ran.wait(), 5)
    await monitor.aclose()
    assert task.done() and not task.cancelled()
    assert cancelled == [True]
    assert asyncio.all_tasks() == before
    # Stopped by stop() while running: a probe cut short by stop is a neutral "cancelled", not a failure.
    assert _totals(registry) == {("health_check", Outcome.NEUTRAL): 1}

    async with HealthMonitor(registry=registry, interval_s=3600) as second:
        await asyncio.sleep(0)  # the task started by `async with` gets its first turn
        assert second.running
    assert asyncio.all_tasks() == before


async def test_stop_before_the_task_started() -> None:
    monitor = HealthMonitor(registry=HealthRegistry())
    task = monitor.start_async()
    await monitor.aclose()  # the task had not run yet: it must still end
    assert task.done()
    monitor.stop()  # never started again: a no-op, and the next start is not pre-stopped
    task = monitor.start_async()
    await asyncio.sleep(0)
    assert monitor.running
    await monitor.aclose()


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() in a multi-threaded process
def test_after_fork_the_child_monitor_is_stopped_and_can_start() -> None:
    registry = HealthRegistry()
    parent = os.getpid()
    release = threading.Event()
    in_parent_run = threading.Event()

    def check() -> bool:
        if os.getpid() == parent:  # the parent's run is still going at fork()
            in_parent_run.set()
            release.wait(10)
        return True

    monitor = HealthMonitor(registry=registry, interval_s=0.05, jitter=0.0, timeout_s=30)
    monitor.add(check, provider="openai", model="gpt-4o")
    monitor.start()
    assert in_parent_run.wait(5)
    pid = os.fork()
    if pid == 0:  # child: neither the scheduler thread nor the probe's worker thread exists here
        code = 1
        signal.alarm(10)  # a deadlocked child dies instead of hanging the parent's waitpid
        try:
            stopped = not monitor.running
            monitor.start()  # the probe is not busy here: its run belonged to the parent
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not registry.get(provider="openai", model="gpt-4o"):
                time.sleep(0.01)
            monitor.stop()
            if stopped and _totals(registry).get(("health_check", Outcome.SUCCESS), 0) >= 1:
                code = 0
        finally:
            os._exit(code)
    release.set()
    monitor.stop()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
