"""Latency SLOs and slow calls through the real OpenAI SDK, our transport and the simulated provider.

Call durations are real (the provider's scripted delay); the registry's clock is a ManualClock moved
30 s per call, so an hour of SLO windows takes 120 calls. Thresholds are a fifth of a second so the
slowdown (3x the threshold) costs seconds, not minutes, and the steady latency (a tenth of it) stays far
enough under it on a loaded machine.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import BreakerConfig, BreakerState, HealthStatus, HealthTransition
from otel_model_health.health.types import TransitionKind as Kind
from otel_model_health.instrument.transport import instrument_client
from otel_model_health.slo import SLO
from otel_model_health.testing import Fault, ManualClock, SimulatedProvider

pytestmark = pytest.mark.integration  # the simulated provider on 127.0.0.1

THRESHOLD_S = 0.2
STEP_S = 30.0  # simulated seconds between calls
START = 1_000_000 * 60.0


class Setup:
    def __init__(self, sim: SimulatedProvider, *, config: BreakerConfig | None = None) -> None:
        self.sim = sim
        self.clock = ManualClock(START)
        slo = SLO("chat-latency", sli="latency", objective=0.99, latency_threshold_s=THRESHOLD_S)
        self.registry = HealthRegistry(config=config, clock=self.clock, wall_clock=self.clock, slos=[slo])
        self.seen: list[HealthTransition] = []
        self.registry.subscribe(self.seen.append)
        http = instrument_client(httpx.Client(), registry=self.registry)
        self.client = openai.OpenAI(
            base_url=sim.openai_base_url, api_key="sk-test", http_client=http, max_retries=0
        )

    def calls(self, n: int) -> None:
        for _ in range(n):
            self.client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            self.clock.advance(STEP_S)

    def kinds(self) -> list[tuple[Kind, float]]:
        return [(t.kind, t.at - START) for t in self.seen]


@pytest.fixture
def sim() -> Iterator[SimulatedProvider]:
    with SimulatedProvider(models=["gpt-4o"]) as provider:
        yield provider


def test_latency_slo_pages_on_a_slowdown_and_never_on_steady_latency_under_it(sim: SimulatedProvider) -> None:
    setup = Setup(sim)
    rule = sim.script("gpt-4o", Fault.latency(THRESHOLD_S / 10))  # steady, a tenth of the threshold
    setup.calls(240)  # two simulated hours
    assert not [t for t in setup.seen if t.slo_alert is not None and t.slo_alert.severity == "page"]
    (steady,) = setup.registry.slo_statuses()
    sim.clear_faults()
    del rule
    sim.script("gpt-4o", Fault.latency(3 * THRESHOLD_S))  # every call 3x slower than the threshold
    setup.calls(18)
    pages = [
        (at - 240 * STEP_S, t.slo_alert.long_window_s)
        for t, (_, at) in zip(setup.seen, setup.kinds(), strict=True)
        if t.kind is Kind.SLO_ALERT_STARTED and t.slo_alert and t.slo_alert.severity == "page"
    ]
    # With two hours of history the 6 h window holds 241 + n calls: over 6x (6%) once n = 16 are slow,
    # the call at 15 x 30 s = 450 s (its 30 min window is a quarter slow). The 1 h window (121 calls)
    # passes 14.4x (14.4% slow) at 18 slow calls: 17 x 30 s = 510 s. Durations are real: a steady call
    # that a loaded machine made slower than the threshold counts as bad and brings the pages forward.
    if steady.bad == 0:
        assert pages == [(450.0, 6 * 3600), (510.0, 3600)]
    else:
        assert [w for _, w in pages] == [6 * 3600, 3600] and pages[1][0] <= 510.0
    print(f"latency SLO paged {pages[0][0]:.0f} simulated s after the slowdown began")
    # Latency breaches are not failures: the breaker stays closed.
    (state,) = setup.registry.snapshot()
    assert state.breaker_state is BreakerState.CLOSED


def test_a_slow_call_burst_degrades_but_does_not_open(sim: SimulatedProvider) -> None:
    config = BreakerConfig(slow_call_duration_s=THRESHOLD_S)  # the defaults otherwise: 50% of >= 5 calls
    setup = Setup(sim, config=config)
    setup.calls(10)
    sim.script("gpt-4o", Fault.latency(3 * THRESHOLD_S), times=10)
    setup.calls(10)
    (state,) = setup.registry.snapshot()
    assert state.status is HealthStatus.DEGRADED and state.breaker_state is BreakerState.CLOSED
    assert state.slow_calls_in_window == 10
    # The window of 20 holds 10 fast calls; the 10th slow one makes it 50%.
    assert [k for k, _ in setup.kinds() if k is not Kind.SLO_ALERT_STARTED] == [Kind.SLOW_CALLS]
    assert [at for k, at in setup.kinds() if k is Kind.SLOW_CALLS] == [19 * STEP_S]
    setup.calls(11)  # fast again: the slow calls leave the window
    assert [k for k, _ in setup.kinds() if k in (Kind.SLOW_CALLS, Kind.SLOW_CALLS_CLEARED)] == [
        Kind.SLOW_CALLS,
        Kind.SLOW_CALLS_CLEARED,
    ]


def test_slow_calls_open_the_breaker_only_when_opted_in(sim: SimulatedProvider) -> None:
    config = BreakerConfig(slow_call_duration_s=THRESHOLD_S, slow_calls_open=True)
    setup = Setup(sim, config=config)
    sim.script("gpt-4o", Fault.latency(3 * THRESHOLD_S))
    setup.calls(5)
    (state,) = setup.registry.snapshot()
    assert state.breaker_transitions[BreakerState.OPEN] == 1  # (half-open by now: 30 s per call)
    kinds = [k for k, _ in setup.kinds() if k is not Kind.SLO_ALERT_STARTED]
    assert kinds[:2] == [Kind.SLOW_CALLS, Kind.BREAKER_OPENED]  # then half-open, by the clock
