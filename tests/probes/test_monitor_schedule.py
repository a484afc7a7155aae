"""HealthMonitor scheduling with an injected clock: interval, jitter, selection, half-open trials."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import BreakerState, HealthStatus
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.probes import HealthMonitor, ProbeCandidate
from otel_model_health.testing import ManualClock

GPT = ModelKey(provider="openai", model="gpt-4o")


class _Half:
    def random(self) -> float:
        return 0.5


def _registry(clock: ManualClock) -> HealthRegistry:
    return HealthRegistry(clock=clock, wall_clock=lambda: 1_700_000_000.0 + clock(), random=_Half())


def _cycle(values: list[float]) -> Iterator[float]:
    while True:
        yield from values


class _ClockSleep:
    """The monitor's ``sleep``: moves the manual clock instead of waiting; stops the monitor after n runs."""

    def __init__(self, clock: ManualClock, calls: list[float], n: int) -> None:
        self.clock, self.calls, self.n = clock, calls, n
        self.monitor: HealthMonitor | None = None

    async def __call__(self, delay: float) -> None:
        assert self.monitor is not None
        await self.monitor.drain()
        if len(self.calls) >= self.n:
            self.monitor.stop()
        self.clock.advance(delay)
        await asyncio.sleep(0)


async def _run_until(monitor: HealthMonitor, sleep: _ClockSleep) -> None:
    """Run the real scheduler, with ``sleep`` as its sleep, until it stops the monitor."""
    sleep.monitor = monitor
    await asyncio.wait_for(monitor.run(), timeout=10)


async def test_probes_every_interval_without_jitter() -> None:
    clock = ManualClock()
    registry = _registry(clock)
    calls: list[float] = []
    sleep = _ClockSleep(clock, calls, 4)
    monitor = HealthMonitor(
        registry=registry, interval_s=30, jitter=0.0, select="always", clock=clock, sleep=sleep
    )

    async def check() -> None:
        calls.append(clock())

    monitor.add(check, provider="openai", model="gpt-4o")
    await _run_until(monitor, sleep)
    assert calls[:4] == [1000.0, 1030.0, 1060.0, 1090.0]
    state = registry.get(provider="openai", model="gpt-4o")
    assert state is not None
    assert state.outcome_totals[("health_check", Outcome.SUCCESS)] >= 4
    assert not monitor.running


async def test_jitter_stays_within_bounds() -> None:
    clock = ManualClock()
    randoms = _cycle([0.0, 1.0, 0.25, 0.999, 0.5])
    calls: list[float] = []
    sleep = _ClockSleep(clock, calls, 12)
    monitor = HealthMonitor(
        registry=_registry(clock),
        interval_s=100,
        jitter=0.2,
        select="always",
        clock=clock,
        sleep=sleep,
        random=lambda: next(randoms),
    )

    async def check() -> None:
        calls.append(clock())

    monitor.add(check, provider="openai", model="gpt-4o")
    await _run_until(monitor, sleep)
    # The first run lands within [0, jitter × interval] of start.
    assert 1000.0 <= calls[0] <= 1020.0
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert all(80.0 - 1e-9 <= gap <= 120.0 + 1e-9 for gap in gaps), gaps
    assert min(gaps) == pytest.approx(80.0)  # random 0.0 → interval × (1 − jitter)
    assert max(gaps) == pytest.approx(120.0)  # random 1.0 → interval × (1 + jitter)


async def test_due_selection_skips_fresh_traffic() -> None:
    clock = ManualClock()
    registry = _registry(clock)
    monitor = HealthMonitor(registry=registry, interval_s=30, jitter=0.0, clock=clock)
    calls: list[str] = []

    async def check_gpt() -> None:
        calls.append("gpt-4o")

    async def check_mini() -> None:
        calls.append("gpt-4o-mini")

    monitor.add(check_gpt, provider="openai", model="gpt-4o")
    monitor.add(check_mini, provider="openai", model="gpt-4o-mini")
    registry.record(GPT, Outcome.SUCCESS, latency_s=0.2)  # real traffic just now

    monitor.tick()
    await monitor.drain()
    assert calls == ["gpt-4o-mini"]  # never seen: probed; fresh traffic: skipped
    assert monitor.stats.skipped == 1

    clock.advance(30)
    registry.record(GPT, Outcome.SUCCESS, latency_s=0.2)  # still fresh traffic at the next round
    monitor.tick()
    await monitor.drain()
    # gpt-4o: skipped again; mini: its own last probe is one interval old, so it is due.
    assert calls == ["gpt-4o-mini", "gpt-4o-mini"]

    clock.advance(30)  # no traffic for one interval: both probed
    monitor.tick()
    await monitor.drain()
    assert sorted(calls[2:]) == ["gpt-4o", "gpt-4o-mini"]
    assert monitor.stats.skipped == 2


async def test_custom_selection_callable() -> None:
    clock = ManualClock()
    seen: list[ProbeCandidate] = []

    def only_unknown(candidate: ProbeCandidate) -> bool:
        seen.append(candidate)
        return candidate.state is None

    registry = _registry(clock)
    monitor = HealthMonitor(registry=registry, interval_s=10, jitter=0.0, clock=clock, select=only_unknown)
    calls: list[float] = []

    def check() -> bool:
        calls.append(clock())
        return True

    monitor.add(check, provider="openai", model="gpt-4o")
    monitor.tick()
    await monitor.drain()
    clock.advance(10)
    monitor.tick()
    await monitor.drain()
    assert len(calls) == 1
    assert seen[0].state is None and seen[0].since_last_outcome_s is None
    assert seen[1].state is not None
    assert seen[1].since_last_outcome_s == pytest.approx(10.0)


async def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        HealthMonitor(registry=HealthRegistry(), interval_s=0)
    with pytest.raises(ValueError):
        HealthMonitor(registry=HealthRegistry(), jitter=1.0)
    with pytest.raises(ValueError):
        HealthMonitor(registry=HealthRegistry(), max_concurrency=0)
    with pytest.raises(ValueError):
        HealthMonitor(registry=HealthRegistry(), select="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        HealthMonitor(registry=HealthRegistry()).add(lambda: True, provider="openai")


async def test_probes_are_half_open_trials_and_close_the_breaker() -> None:
    clock = ManualClock()
    registry = _registry(clock)
    for _ in range(5):
        registry.record(GPT, Outcome.FAILURE, error_type="503", status_code=503, started_at=clock())
    opened = registry.get(provider="openai", model="gpt-4o")
    assert opened is not None and opened.breaker_state is BreakerState.OPEN

    monitor = HealthMonitor(registry=registry, interval_s=60, jitter=0.0, clock=clock)
    runs: list[BreakerState] = []

    def check() -> bool:
        state = registry.get(provider="openai", model="gpt-4o")
        assert state is not None
        runs.append(state.breaker_state)
        return True  # the provider is back

    monitor.add(check, provider="openai", model="gpt-4o")
    delay = monitor.tick()  # OPEN: probed (not a trial); next run pulled in to when half-open begins
    await monitor.drain()
    assert runs == [BreakerState.OPEN]
    still_open = registry.get(provider="openai", model="gpt-4o")
    assert still_open is not None and still_open.breaker_state is BreakerState.OPEN
    assert 0 < delay < 60  # the OPEN wait (30 s ± 10 %), not the 60 s interval

    for _ in range(3):
        clock.advance(delay)
        delay = monitor.tick()
        await monitor.drain()
    assert runs[1:] == [BreakerState.HALF_OPEN] * 3
    closed = registry.get(provider="openai", model="gpt-4o")
    assert closed is not None
    assert closed.breaker_state is BreakerState.CLOSED
    assert closed.status is HealthStatus.HEALTHY
