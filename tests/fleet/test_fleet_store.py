"""The fleet store in one process: several registries on one real redis-server, each standing for a
process. Transitions happen once, permits are fleet-wide and expire, foreign values are ignored and
counted, and a Redis that goes away (or is flushed, or loses its scripts) never reaches a caller."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from kit.redis_server import RedisServer

from otel_model_health.health.fleet import RedisStore
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import BreakerConfig, BreakerState, HealthTransition, TransitionKind
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome

pytestmark = pytest.mark.integration

K = TransitionKind
CONFIG = BreakerConfig(open_wait_s=0.5, max_open_wait_s=1.0, jitter=0.0, permit_expiry_s=0.6)


class Node:
    """One registry on the shared Redis, with the transitions its listeners received."""

    def __init__(self, url: str, prefix: str) -> None:
        self.registry = HealthRegistry(config=CONFIG, store=RedisStore(url, prefix=prefix))
        self.seen: list[HealthTransition] = []
        self.registry.subscribe(self.seen.append)

    @property
    def store(self) -> RedisStore:
        fleet = self.registry.fleet
        assert fleet is not None
        return fleet

    def kinds(self, key: ModelKey, *, remote: bool | None = None) -> list[TransitionKind]:
        return [t.kind for t in self.seen if t.key == key and (remote is None or t.remote is remote)]


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def nodes(redis_srv: RedisServer, request: pytest.FixtureRequest) -> Iterator[list[Node]]:
    prefix = f"t:{request.node.name}:"
    made = [Node(redis_srv.url, prefix) for _ in range(3)]
    client = redis_srv.client()
    channel = f"{prefix}events"
    wait_for(lambda: client.pubsub_numsub(channel)[0][1] == len(made))  # every node listens
    yield made
    for node in made:
        node.registry.close(2.0)


def fail(node: Node, key: ModelKey, times: int = 1) -> None:
    for _ in range(times):
        node.registry.record(key, Outcome.FAILURE, error_type="500", status_code=500)


KEY = ModelKey(provider="openai", model="gpt-4o")


def opened_everywhere(nodes: list[Node], key: ModelKey) -> bool:
    return all(not n.registry.is_available(provider=key.provider, model=key.model) for n in nodes)


def test_failures_across_nodes_open_once_for_the_fleet(nodes: list[Node]) -> None:
    for i in range(5):  # 5 consecutive failures in the fleet, none of the nodes has 5 of its own
        fail(nodes[i % 3], KEY)
        wait_for(lambda n=i + 1: all(n == _failures(x, KEY) for x in nodes))
    wait_for(lambda: opened_everywhere(nodes, KEY))
    for kind in (K.FIRST_FAILURE, K.BREAKER_OPENED):
        wait_for(lambda kind=kind: all(kind in n.kinds(KEY) for n in nodes))  # every node sees it ...
        won = [n for n in nodes if kind in n.kinds(KEY, remote=False)]
        assert len(won) == 1, kind  # ... and one node reports it
    assert all(n.store.errors == 0 and n.store.ignored == 0 for n in nodes)


def _failures(node: Node, key: ModelKey) -> int:
    state = node.registry.get(provider=key.provider, model=key.model)
    return 0 if state is None else state.failures_in_window


def test_half_open_permits_are_fleet_wide_and_a_crashed_holders_expire(nodes: list[Node]) -> None:
    nodes[0].registry.force_open(provider=KEY.provider, model=KEY.model, duration_s=0.3)
    wait_for(lambda: opened_everywhere(nodes, KEY))
    time.sleep(0.35)
    permits = [
        n.registry.try_acquire(provider=KEY.provider, model=KEY.model) for n in nodes for _ in range(2)
    ]
    granted = [p for p in permits if p is not None]
    assert len(granted) == CONFIG.half_open_trials  # 3 across the fleet, not 3 per node
    # Their holders "crash": nothing is recorded or released. The fleet's slots come back on expiry.
    assert nodes[2].registry.try_acquire(provider=KEY.provider, model=KEY.model) is None
    time.sleep(CONFIG.permit_expiry_s + 0.1)
    again = [n.registry.try_acquire(provider=KEY.provider, model=KEY.model) for n in nodes]
    assert sum(p is not None for p in again) == len(nodes)
    for p in again:
        assert p is not None
        p.release()  # released slots are free again at once
    wait_for(lambda: not nodes[0].store.releases)
    time.sleep(0.1)
    assert nodes[1].registry.try_acquire(provider=KEY.provider, model=KEY.model) is not None


def test_recovery_is_decided_once(nodes: list[Node]) -> None:
    nodes[0].registry.force_open(provider=KEY.provider, model=KEY.model, duration_s=0.2)
    wait_for(lambda: opened_everywhere(nodes, KEY))
    time.sleep(0.25)
    for node in nodes:
        permit = node.registry.try_acquire(provider=KEY.provider, model=KEY.model)
        assert permit is not None and permit.tracked
        node.registry.record(KEY, Outcome.SUCCESS, started_at=node.registry.now())
    wait_for(lambda: all(K.RECOVERED in n.kinds(KEY) for n in nodes))
    assert sum(K.RECOVERED in n.kinds(KEY, remote=False) for n in nodes) == 1
    for node in nodes:
        state = node.registry.get(provider=KEY.provider, model=KEY.model)
        assert state is not None and state.breaker_state is BreakerState.CLOSED


def test_foreign_and_wrong_typed_values_are_ignored_and_counted(
    nodes: list[Node], redis_srv: RedisServer
) -> None:
    client = redis_srv.client()
    prefix = nodes[0].store.prefix
    client.set(f"{prefix}b:openai|direct|gpt-4o", "not a hash")  # wrong type where a record goes
    client.hset(f"{prefix}b:openai|direct|o1", mapping={"v": "abc", "s": "sideways"})  # wrong fields
    client.set(f"{prefix}models", "not a zset")
    for garbage in (b"", b"o{not json", b"t[1,2]", b'ox\n[["bad"]]', b"\xff\xfe", b"zzz"):
        client.publish(f"{prefix}events", garbage)
    fail(nodes[0], KEY, 5)
    fail(nodes[1], ModelKey(provider="openai", model="o1"), 1)
    wait_for(lambda: opened_everywhere(nodes, KEY))
    wait_for(lambda: sum(n.store.ignored for n in nodes) >= 3 + 6 * len(nodes))
    assert client.type(f"{prefix}b:openai|direct|gpt-4o") == b"hash"  # ours replaced it
    assert client.type(f"{prefix}models") == b"zset"


def test_flushall_and_lost_scripts_are_survived(nodes: list[Node], redis_srv: RedisServer) -> None:
    client = redis_srv.client()
    fail(nodes[0], KEY, 5)
    wait_for(lambda: opened_everywhere(nodes, KEY))
    client.flushall()
    client.script_flush()  # the next EVALSHA gets NOSCRIPT; the script is loaded again
    other = ModelKey(provider="openai", model="gpt-4.1")
    for i in range(5):
        fail(nodes[i % 3], other)
        wait_for(lambda n=i + 1: all(n == _failures(x, other) for x in nodes))
    wait_for(lambda: opened_everywhere(nodes, other))
    wait_for(lambda: all(K.BREAKER_OPENED in n.kinds(other) for n in nodes))
    assert sum(K.BREAKER_OPENED in n.kinds(other, remote=False) for n in nodes) == 1
    assert all(n.store.errors == 0 for n in nodes)


def test_redis_gone_falls_back_to_the_local_verdict(
    redis_srv: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    node = Node(redis_srv.url, "t:gone:")
    try:
        wait_for(lambda: node.store.connected)
        node.registry.record(KEY, Outcome.SUCCESS)
        assert node.store.flush(2.0)
        caplog.set_level(logging.WARNING, logger="otel_model_health")
        redis_srv.kill()
        started = time.monotonic()
        for _ in range(5):  # never raises, never waits on Redis
            fail(node, KEY)
        assert time.monotonic() - started < 0.1
        wait_for(lambda: not node.registry.is_available(provider="openai", model="gpt-4o"), 1.0)
        # Its own verdict, reported by it once the flusher finds Redis gone (within a second).
        wait_for(lambda: K.BREAKER_OPENED in node.kinds(KEY, remote=False), 1.0)

        def warnings() -> list[logging.LogRecord]:
            return [r for r in caplog.records if r.levelno == logging.WARNING and "failed" in r.getMessage()]

        wait_for(lambda: node.store.errors > 0 and bool(warnings()), 1.0)  # within a second
        time.sleep(0.6)
        fail(node, KEY, 3)
        time.sleep(0.6)
        assert len(warnings()) == 1  # once, however many operations fail
        assert node.store.dropped > 0  # outcomes while down are not replayed
    finally:
        redis_srv.start()
    wait_for(lambda: node.store.connected, 5.0)
    node.registry.close(2.0)


def test_a_forked_child_gets_its_own_link(nodes: list[Node]) -> None:
    # A gunicorn worker forked from a master that already had the store running: the child's flusher and
    # subscriber are its own (the parent's threads do not exist in it) and it joins the fleet.
    registry = nodes[0].registry
    registry.record(KEY, Outcome.SUCCESS)
    assert nodes[0].store.flush(2.0)

    def child() -> None:
        for _ in range(5):
            fail(nodes[0], KEY)
        assert nodes[0].store.flush(2.0)
        registry.close(2.0)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(20)
    assert process.exitcode == 0
    wait_for(lambda: opened_everywhere(nodes, KEY))
    # The child won it: the parent's registries all got it as remote (listeners run after the lock).
    wait_for(lambda: all(K.BREAKER_OPENED in n.kinds(KEY, remote=True) for n in nodes))
    assert not any(K.BREAKER_OPENED in n.kinds(KEY, remote=False) for n in nodes)


def test_the_key_cap_is_fleet_wide(redis_srv: RedisServer) -> None:
    prefix = "t:cap:"
    registries = [HealthRegistry(config=CONFIG, max_keys=2, store=RedisStore(redis_srv.url, prefix=prefix))]
    registries.append(
        HealthRegistry(config=CONFIG, max_keys=2, store=RedisStore(redis_srv.url, prefix=prefix))
    )
    client = redis_srv.client()
    models = [ModelKey(provider="openai", model=f"m{i}") for i in range(3)]
    for i, key in enumerate(models):  # each process records 1 or 2 models; the fleet 3, over its cap of 2
        registries[i % 2].record(key, Outcome.FAILURE, error_type="500")
        fleet = registries[i % 2].fleet
        assert fleet is not None and fleet.flush(2.0)
        time.sleep(0.01)
    assert client.zrange(f"{prefix}models", 0, -1) == [b"openai|direct|m1", b"openai|direct|m2"]
    assert client.exists(f"{prefix}b:openai|direct|m0") == 0  # the least recently used lost its record
    assert client.exists(f"{prefix}b:openai|direct|m2") == 1
    ttl = client.ttl(f"{prefix}b:openai|direct|m2")
    assert 0 < ttl <= CONFIG.stale_after_s
    for registry in registries:
        registry.close(2.0)


def test_a_frozen_redis_costs_callers_nothing(redis_srv: RedisServer) -> None:
    # SIGSTOP: connections stay open and nothing answers, the slow case (a dead one refuses at once).
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from otel_model_health.health.metrics import register_health_metrics

    node = Node(redis_srv.url, "t:frozen:")
    reader = InMemoryMetricReader()
    register_health_metrics(node.registry, MeterProvider(metric_readers=[reader]).get_meter("t"))
    wait_for(lambda: node.store.connected)
    process = redis_srv.process
    assert process is not None
    os.kill(process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        fail(node, KEY, 5)  # the flusher is woken at once and hangs on the socket, not the caller
        assert time.monotonic() - started < 0.1
        wait_for(lambda: not node.store.connected, 1.0)  # the socket timeout, well under a second
        wait_for(lambda: K.BREAKER_OPENED in node.kinds(KEY, remote=False), 1.0)
    finally:
        os.kill(process.pid, signal.SIGCONT)
    wait_for(lambda: node.store.connected, 5.0)
    data = reader.get_metrics_data()
    assert data is not None
    points = {
        m.name: m.data.data_points[0].value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name.startswith("model_health.store.")
    }
    assert points["model_health.store.errors"] >= 1
    assert set(points) == {
        "model_health.store.errors",
        "model_health.store.dropped",
        "model_health.store.ignored",
    }
    node.registry.close(2.0)


def test_configure_reads_the_url_and_prefixes_by_service(
    redis_srv: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import otel_model_health as omh

    monkeypatch.setenv("MODEL_HEALTH_REDIS_URL", redis_srv.url)
    before = set(threading.enumerate())
    handle = omh.configure(service_name="checkout", sdk_disabled=True)
    try:
        store = handle.registry.fleet
        assert store is not None and store.prefix == "model_health:checkout:"
        handle.registry.record(KEY, Outcome.FAILURE)
        assert store.flush(2.0)
        assert redis_srv.client().exists("model_health:checkout:b:openai|direct|gpt-4o") == 1
    finally:
        handle.shutdown()
    started = set(threading.enumerate()) - before
    assert not [t for t in started if t.name.startswith("model-health-fleet")]  # shutdown stopped them


def test_enforcement_is_refused_when_the_fleet_has_no_trial_slot(nodes: list[Node]) -> None:
    from otel_model_health.health.admission import TRIALS_BUSY, Refusal
    from otel_model_health.health.breaker import Permit

    nodes[0].registry.force_open(provider=KEY.provider, model=KEY.model, duration_s=0.2)
    wait_for(lambda: opened_everywhere(nodes, KEY))
    time.sleep(0.25)
    decisions = [n.registry.admit(KEY) for n in nodes for _ in range(2)]
    assert sum(isinstance(d, Permit) for d in decisions) == CONFIG.half_open_trials
    refusals = [d for d in decisions if isinstance(d, Refusal)]
    assert len(refusals) == 6 - CONFIG.half_open_trials and all(r.reason == TRIALS_BUSY for r in refusals)
