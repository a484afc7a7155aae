"""Provider outages and SLO alerts across real worker processes on one real redis-server: each is
reported once for the fleet, and every worker's listeners see it once, as remote where another worker won
it. Worker 3 keeps one model (``max_keys=1``), so it can never see a provider outage itself (that takes two
models): it follows the one another worker won."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kit.redis_server import RedisServer
from test_fleet_workers import Fleet, wait_for

from otel_model_health.testing import SimulatedProvider

pytestmark = pytest.mark.integration

# A fast SLO: an alert when more than 10% of the last 30 s and of the last 6 s failed.
SLO = {"name": "fleet-slo", "objective": 0.9, "period": "10m", "match": {"model": "slo-*"}}
SLO["alerts"] = [["page", 1.0, "30s", "6s"]]
BASE = {"slos": [SLO], "slo_snapshot_s": 0.2}  # the fleet's SLO histories saved every 0.2 s
OPTIONS = [BASE, BASE, BASE, {**BASE, "max_keys": 1}]


@pytest.fixture(scope="module")
def fleet(redis_srv: RedisServer) -> Iterator[Fleet]:
    with SimulatedProvider() as sim:
        made = Fleet(sim, redis_srv, prefix="fleet-flags:", options=OPTIONS)
        try:
            yield made
        finally:
            made.stop()


def seen(fleet: Fleet, kind: str) -> list[list[bool]]:
    """Per worker: the ``remote`` flag of each ``kind`` transition its listeners received."""
    return [[remote for k, remote in answer if k == kind] for answer in fleet.ask_all("seen")]


def sentry_events(fleet: Fleet, kind: str) -> int:
    return sum(tag == kind for answer in fleet.ask_all("events") for tag, _ in answer)


def once_per_worker_one_own(fleet: Fleet, kind: str, read: str | None = None) -> list[list[bool]]:
    """Waits until every worker saw ``kind`` once; returns what they saw a moment later. ``read``: a model
    whose SLOs each worker reads meanwhile (alerts are evaluated on reads, as a metrics collection does)."""

    def done() -> bool:
        if read is not None:
            fleet.ask_all("slo", read)
        return all(seen(fleet, kind))

    try:
        wait_for(done, 10)
    except AssertionError:
        raise AssertionError(f"{kind} not seen once by every worker: {fleet.ask_all('seen')}") from None
    time.sleep(0.3)  # time for a second one to arrive, if there were one
    return seen(fleet, kind)


def test_a_provider_outage_and_its_end_reach_every_worker_once(fleet: Fleet) -> None:
    for i in range(6):  # two models of one provider fail, the failures spread across workers 0-2
        fleet.ask(i % 3, "record", "outage-a", "failure", 1)
        fleet.ask(i % 3, "record", "outage-b", "failure", 1)
    outage = once_per_worker_one_own(fleet, "provider_outage")
    assert [len(s) for s in outage] == [1, 1, 1, 1]  # every worker's listeners, once
    assert sum(not remote for s in outage for remote in s) == 1  # one worker won it ...
    assert outage[3] == [True]  # ... never worker 3, which cannot see an outage of its own
    assert sentry_events(fleet, "provider_outage") == 1  # and only the winner's bridge reported it

    calls = iter(range(1000))

    def back() -> bool:  # the provider is back: successes, spread across every worker, until the breaker
        fleet.ask(next(calls) % 4, "record", "outage-a", "success", 1)  # half-opens (1 s) and closes
        return all(seen(fleet, "provider_recovered"))

    wait_for(back, 10)
    recovered = once_per_worker_one_own(fleet, "provider_recovered")
    assert [len(s) for s in recovered] == [1, 1, 1, 1]
    assert sum(not remote for s in recovered for remote in s) == 1


def test_an_slo_alert_counts_the_fleet_and_is_reported_once(fleet: Fleet) -> None:
    model = "slo-chat"
    for i in range(40):  # 40 good and 8 bad calls, one worker at a time: 16.7% > 10% failed
        fleet.ask(i % 4, "record", model, "success", 1)
    for i in range(8):
        fleet.ask(i % 4, "record", model, "failure", 1)
    started = once_per_worker_one_own(fleet, "slo_alert_started", model)
    assert [len(s) for s in started] == [1, 1, 1, 1]
    assert sum(not remote for s in started for remote in s) == 1
    counts: list[Any] = fleet.ask_all("slo", model)
    assert counts == [[(40.0, 8.0)]] * 4  # every worker's history holds the whole fleet's calls
    assert sentry_events(fleet, "slo_alert_started") == 1


def test_a_worker_that_starts_late_gets_the_fleets_slo_history(fleet: Fleet) -> None:
    model = "slo-late"
    for i in range(30):
        fleet.ask(i % 3, "record", model, "success", 1)
    for i in range(3):
        fleet.ask(i % 3, "record", model, "failure", 1)
    client: Any = fleet.redis.client()
    saved = f"fleet-flags:h:fleet-slo|openai|self_hosted|{model}"
    wait_for(lambda: client.exists(saved) and fleet.ask_all("slo", model)[0] == [(30.0, 3.0)], 10)
    time.sleep(0.5)  # a snapshot written after the last of those calls reached every worker

    late = Fleet(fleet.sim, fleet.redis, prefix="fleet-flags:", options=[BASE])
    try:
        wait_for(lambda: late.ask(0, "slo", model) == [(30.0, 3.0)], 10)  # seeded: the time before it began
        assert late.ask(0, "store")["slo_series_seeded"] >= 1
        assert sum(s["slo_snapshots_written"] for s in fleet.ask_all("store")) >= 1
        for i in range(10):  # and counting on with the fleet, nothing twice
            fleet.ask(i % 3, "record", model, "success", 1)
        wait_for(lambda: late.ask(0, "slo", model) == [(40.0, 3.0)], 10)
        assert fleet.ask(0, "slo", model) == [(40.0, 3.0)]
    finally:
        late.stop()
