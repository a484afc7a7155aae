"""The fleet as a gateway runs it: 4 worker processes (tests/fleet/fleet_worker.py) on one real
redis-server, each calling the simulated provider through an instrumented OpenAI client and reporting
to Sentry through its own in-memory transport. Traffic is spread across the workers, one call at a
time, about 50 calls a second in all; each test uses its own model."""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable, Iterator
from typing import Any

import fleet_worker
import pytest
from kit.redis_server import RedisServer

from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration

WORKERS = 4
PREFIX = "fleet-test:"
CONFIG = {
    "open_wait_s": 1.0,
    "max_open_wait_s": 2.0,
    "jitter": 0.0,
    "half_open_trials": 3,
    "consecutive_failures": 5,
    "minimum_calls": 5,
    "window_size": 20,
}
PAUSE_S = 0.02  # between the calls the test spreads across the workers


class Fleet:
    def __init__(self, sim: SimulatedProvider, redis: RedisServer) -> None:
        self.sim = sim
        self.redis = redis
        context = multiprocessing.get_context("spawn")
        self.conns: list[Any] = []
        self.processes: list[Any] = []
        for _ in range(WORKERS):
            parent, child = context.Pipe()
            process = context.Process(
                target=fleet_worker.main,
                args=(child, redis.url, PREFIX, sim.openai_base_url, CONFIG),
                daemon=True,
            )
            process.start()
            self.conns.append(parent)
            self.processes.append(process)
        for conn in self.conns:
            assert conn.poll(60), "a worker did not start"
            assert conn.recv() == "ready"
        client: Any = redis.client()
        wait_for(lambda: client.pubsub_numsub(f"{PREFIX}events")[0][1] == WORKERS, 10)

    def send(self, worker: int, *command: Any) -> None:
        self.conns[worker].send(command)

    def receive(self, worker: int) -> Any:
        conn = self.conns[worker]
        assert conn.poll(60), f"worker {worker} did not answer"
        answer = conn.recv()
        assert not (isinstance(answer, dict) and "error" in answer), answer
        return answer

    def ask(self, worker: int, *command: Any) -> Any:
        self.send(worker, *command)
        return self.receive(worker)

    def ask_all(self, *command: Any) -> list[Any]:
        for worker in range(WORKERS):
            self.send(worker, *command)
        return [self.receive(worker) for worker in range(WORKERS)]

    def opened_events(self, model: str) -> list[str]:
        """The events about ``model`` once its breaker_opened event arrived (the winner's flusher delivers
        it just after the others saw the breaker open)."""
        wait_for(lambda: "breaker_opened" in self.events(model))
        time.sleep(0.2)  # time for a second one to arrive, if there were one
        return self.events(model)

    def events(self, model: str) -> list[str]:
        """The Sentry events about ``model`` of every worker, summed: their transition tags."""
        return [kind for answer in self.ask_all("events") for kind, model_id in answer if model_id == model]

    def stop(self) -> None:
        for worker, process in enumerate(self.processes):
            if process.is_alive():
                with contextlib.suppress(AssertionError, OSError, EOFError):
                    self.ask(worker, "stop")
            process.join(5)
            if process.is_alive():
                process.kill()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def fleet(redis_srv: RedisServer) -> Iterator[Fleet]:
    with SimulatedProvider() as sim:
        made = Fleet(sim, redis_srv)
        try:
            yield made
        finally:
            made.stop()


def outage(fleet: Fleet, model: str) -> int:
    """Fail every call of ``model``, spread across the workers, until no worker would call it; returns
    the calls that failed in all."""
    fleet.sim.script(model, Fault.status(500))
    failed = 0
    for i in range(60):
        answer = fleet.ask(i % WORKERS, "call", model)
        failed += answer["called"] and not answer["ok"]
        if not any(fleet.ask_all("available", model)):
            return failed
        time.sleep(PAUSE_S)
    raise AssertionError(f"the breaker of {model} did not open everywhere ({failed} failed calls)")


def test_outage_opens_once_for_the_fleet_and_recovers_with_exactly_the_trials(fleet: Fleet) -> None:
    model = "fleet-outage"
    failed = outage(fleet, model)
    assert failed <= 6  # per-process breakers would need 5 failures in each worker: up to 20
    assert fleet.ask_all("state", model) == ["open"] * WORKERS
    events = fleet.opened_events(model)
    assert events.count("breaker_opened") == 1
    assert len(events) <= 3

    fleet.sim.clear_faults()
    trials = 0
    deadline = time.monotonic() + 15
    i = 0
    while fleet.ask_all("state", model) != ["closed"] * WORKERS:
        assert time.monotonic() < deadline, "the fleet did not close"
        answer = fleet.ask(i % WORKERS, "call", model)
        trials += answer["called"] and answer["trial"]
        assert not answer["called"] or answer["ok"]
        i += 1
        time.sleep(PAUSE_S)
    assert trials == CONFIG["half_open_trials"]  # across the fleet, not per worker
    assert fleet.events(model).count("breaker_opened") == 1  # recovery reports nothing new


def test_health_is_the_same_fleet_summary_from_every_worker(fleet: Fleet) -> None:
    fleet.sim.script("fleet-health-down", Fault.status(500))
    for i in range(8):
        fleet.ask(i % WORKERS, "call", "fleet-health-ok")
        fleet.ask(i % WORKERS, "call", "fleet-health-down")
        time.sleep(PAUSE_S)
    fleet.sim.clear_faults()
    time.sleep(0.3)  # the last outcomes reach every worker
    summaries = fleet.ask_all("summary")
    assert summaries[0]["models"]["total"] >= 2
    assert summaries[0]["models"]["unhealthy"] >= 1
    assert all(summary == summaries[0] for summary in summaries)


def test_random_failures_and_a_429_storm_open_nothing(fleet: Fleet) -> None:
    noise, storm = "fleet-noise", "fleet-429"
    fleet.sim.script(noise, Fault.status(500), probability=0.02)
    answers = fleet.ask_all("batch", noise, 2000 // WORKERS, 0.0)
    assert sum(a["called"] for a in answers) == 2000
    assert 10 <= sum(a["failed"] for a in answers) <= 80  # ~2% of 2000 did fail
    fleet.sim.script(storm, Fault.rate_limit(retry_after=0.05))
    answers = fleet.ask_all("batch", storm, 50, 0.01)
    assert sum(a["called"] for a in answers) >= 20
    time.sleep(0.3)
    for model in (noise, storm):
        assert fleet.ask_all("state", model) == ["closed"] * WORKERS
        assert "breaker_opened" not in fleet.events(model)
    fleet.sim.clear_faults()


def test_flushall_mid_run_is_survived(fleet: Fleet) -> None:
    client: Any = fleet.redis.client()
    for worker in range(WORKERS):
        fleet.send(worker, "batch", "fleet-flush-traffic", 100, 0.005)
    time.sleep(0.2)
    client.flushall()
    answers = [fleet.receive(worker) for worker in range(WORKERS)]
    assert sum(a["called"] for a in answers) == 400 and sum(a["failed"] for a in answers) == 0
    assert outage(fleet, "fleet-after-flush") <= 6
    assert fleet.opened_events("fleet-after-flush").count("breaker_opened") == 1


def test_redis_killed_then_restarted_5s_later(fleet: Fleet) -> None:
    fleet.redis.kill()
    killed_at = time.monotonic()
    # Callers never see Redis: calls go on, each worker judging by its own outcomes.
    for i in range(20):
        answer = fleet.ask(i % WORKERS, "call", "fleet-kill-ok")
        assert answer["called"] and answer["ok"]
    fleet.sim.script("fleet-kill", Fault.status(500))
    for _ in range(5):
        fleet.ask(0, "call", "fleet-kill")
    assert fleet.ask(0, "available", "fleet-kill") is False  # worker 0's own verdict ...
    assert fleet.ask(1, "available", "fleet-kill") is True  # ... which the others cannot know
    stores = fleet.ask_all("store")
    assert all(s["errors"] > 0 and not s["connected"] for s in stores), stores
    time.sleep(max(0.0, 5.0 - (time.monotonic() - killed_at)))
    fleet.redis.start()
    wait_for(lambda: all(s["connected"] for s in fleet.ask_all("store")), 10)
    client: Any = fleet.redis.client()
    wait_for(lambda: client.pubsub_numsub(f"{PREFIX}events")[0][1] == WORKERS, 10)
    # Fleet state resumes: the next outage is the fleet's again.
    assert outage(fleet, "fleet-after-restart") <= 6
    assert fleet.opened_events("fleet-after-restart").count("breaker_opened") == 1
    fleet.sim.clear_faults()
