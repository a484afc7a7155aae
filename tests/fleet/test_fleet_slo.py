"""The default (Workbook) SLO alerts across two registries on one real redis-server, on simulated time
(one ManualClock, so the hour-long windows take seconds): each registry counts both registries' calls, and
the page of a hard outage is reported by one of them, as in tests/slo/test_slo_detection.py for one."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kit.redis_server import RedisServer

from otel_model_health.health.fleet import RedisStore
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import HealthTransition, TransitionKind
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.slo import SLO
from otel_model_health.testing import ManualClock

pytestmark = pytest.mark.integration

KEY = ModelKey(provider="openai", model="gpt-4o")
START = 1_000_000 * 60.0


@pytest.fixture
def pair(
    redis_srv: RedisServer,
) -> Iterator[tuple[ManualClock, list[HealthRegistry], list[HealthTransition]]]:
    clock = ManualClock(START)
    alerts: list[HealthTransition] = []
    registries = [
        HealthRegistry(
            clock=clock,
            wall_clock=clock,
            slos=[SLO("chat", objective=0.999)],
            store=RedisStore(redis_srv.url, prefix="slo-pair:"),
        )
        for _ in range(2)
    ]
    for registry in registries:
        registry.subscribe(lambda t: t.slo_alert is not None and alerts.append(t))
    client = redis_srv.client()
    deadline = time.monotonic() + 5
    while client.pubsub_numsub("slo-pair:events")[0][1] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield clock, registries, alerts
    for registry in registries:
        registry.close(2.0)


def counted(registry: HealthRegistry) -> float:
    return sum(status.good + status.bad for status in registry.slo_statuses())  # none before its first call


def test_a_hard_outage_pages_once_for_the_fleet_from_both_registries_calls(
    pair: tuple[ManualClock, list[HealthRegistry], list[HealthTransition]],
) -> None:
    clock, registries, alerts = pair
    for second in range(10 * 60 + 120):  # 1 call/s, alternating: 10 clean minutes, then a 100% outage
        me, other = registries[second % 2], registries[1 - second % 2]
        me.record(KEY, Outcome.SUCCESS if second < 600 else Outcome.FAILURE, latency_s=0.5)
        assert me.fleet is not None and me.fleet.flush()
        deadline = time.monotonic() + 5
        while counted(other) < second + 1:  # the other registry has it before the clock moves on
            assert time.monotonic() < deadline, "an outcome did not reach the other registry"
            time.sleep(0.002)
        clock.advance(1.0)
    time.sleep(0.3)  # the held alert transitions come back from Redis
    assert [counted(r) for r in registries] == [720.0, 720.0]  # each holds both registries' calls
    started = [
        t for t in alerts if t.kind is TransitionKind.SLO_ALERT_STARTED and t.slo_alert.severity == "page"
    ]
    own = [t for t in started if not t.remote]
    assert len(own) == len({t.slo_alert.long_window_s for t in started})  # one own start per alert ...
    assert len(started) == 2 * len(own)  # ... seen by both registries
    first_page = min(t.at for t in own) - START - 600
    assert first_page <= 120  # within 2 minutes of the outage's start
    print(f"the fleet paged {first_page:.0f} s after the outage began")
