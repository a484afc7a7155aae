"""Section 10: the fleet store (docs/fleet.md) on a real redis-server started for the section.

- the caller-thread CPU of ``record_result`` with a ``RedisStore`` against the in-memory store, in the
  same rounds (``time.thread_time``: the flusher's and subscriber's work is on their own threads);
- outcomes one process pushes per second (recorded, flushed and acknowledged by Redis);
- how long a transition takes to reach another process (a child process's listener), p50 / p99;
- a caller's ``record_result`` latency p99 with Redis killed, against Redis up.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any, Final

from otel_model_health.health.fleet import RedisStore
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import BreakerConfig, CallResult, HealthTransition
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome

from ..kit.redis_server import RedisServer, redis_server
from .harness import Results, Scale, Target, interleave, paired_diff, paired_ratio, us

SECTION: Final = "10. Fleet store (Redis)"
KEY: Final = ModelKey(provider="openai", model="gpt-4o-mini")
RESULT: Final = CallResult(Outcome.SUCCESS, latency_s=0.25)
CONFIG: Final = BreakerConfig(jitter=0.0, open_wait_s=60.0, max_open_wait_s=60.0)


def bench_fleet(scale: Scale) -> Results:
    results = Results()
    with redis_server() as server:
        _record_cost(results, server, scale)
        _push_rate(results, server, scale)
        _propagation(results, server, scale)
        _killed(results, server, scale)
    return results


def _fleet_registry(server: RedisServer, prefix: str, **store: Any) -> HealthRegistry:
    registry = HealthRegistry(config=CONFIG, store=RedisStore(server.url, prefix=prefix, **store))
    deadline = time.monotonic() + 5
    fleet = registry.fleet
    while fleet is not None and not fleet.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    return registry


def _loop(registry: HealthRegistry) -> Any:
    record_result = registry.record_result

    def run(n: int) -> None:
        for _ in range(n):
            record_result(KEY, RESULT)

    return run


def _record_cost(results: Results, server: RedisServer, scale: Scale) -> None:
    memory = HealthRegistry(config=CONFIG)
    # A queue that never fills in the loop: the figure is the enqueue path, not the (cheaper) drop path.
    fleet = _fleet_registry(server, "bench-cost:", queue_size=10_000_000)
    samples = interleave(
        {"empty": lambda n: None, "memory": _loop(memory), "redis": _loop(fleet)},
        n=scale.n(20000),
        rounds=scale.r(11),
        clock=time.thread_time,
    )
    store = fleet.fleet
    assert store is not None
    store.flush(10)
    added = paired_diff(samples["redis"], samples["memory"])
    ratio = paired_ratio(
        [r - e for r, e in zip(samples["redis"], samples["empty"], strict=True)],
        [m - e for m, e in zip(samples["memory"], samples["empty"], strict=True)],
    )
    results.figure(
        SECTION,
        "record_result success, in-memory store",
        us(paired_diff(samples["memory"], samples["empty"])),
        "µs/call",
    )
    results.figure(
        SECTION,
        "record_result success, Redis store",
        us(paired_diff(samples["redis"], samples["empty"])),
        "µs/call",
        f"{store.dropped} outcomes dropped (queue full)",
    )
    results.figure(SECTION, "Redis store / in-memory, caller thread", ratio, "×")
    results.targets.append(
        Target(
            "Fleet: added caller-thread CPU per record ≤ 1.5 µs",
            f"{us(added):+.2f} µs ({ratio:.2f}×)",
            "≤ 1.5 µs",
            added <= 1.5e-6,
        )
    )
    fleet.close(5)


def _push_rate(results: Results, server: RedisServer, scale: Scale) -> None:
    n = scale.n(100_000)
    registry = _fleet_registry(server, "bench-push:", queue_size=n + 1)
    store = registry.fleet
    assert store is not None
    keys = [ModelKey(provider="openai", model=f"m{i}") for i in range(50)]
    started = time.perf_counter()
    for i in range(n):
        registry.record_result(keys[i % 50], RESULT)
    store.flush(60)
    elapsed = time.perf_counter() - started
    rate = n / elapsed
    results.figure(
        SECTION,
        "outcomes pushed per second, one process",
        rate,
        "outcomes/s",
        f"{n} outcomes, 50 models, {store.dropped} dropped",
    )
    results.targets.append(
        Target(
            "Fleet: outcomes one process pushes ≥ 20,000/s", f"{rate:,.0f}/s", "≥ 20,000/s", rate >= 20_000
        )
    )
    registry.close(5)


def _listener(conn: Connection, url: str, prefix: str) -> None:
    """The other process: reports when each transition reached its listeners (epoch seconds)."""
    registry = HealthRegistry(config=CONFIG, store=RedisStore(url, prefix=prefix))

    def on_transition(transition: HealthTransition) -> None:
        conn.send((transition.kind.value, time.time()))

    registry.subscribe(on_transition)
    conn.send(("ready", time.time()))
    conn.recv()  # until told to stop
    registry.close(2)


def _propagation(results: Results, server: RedisServer, scale: Scale) -> None:
    prefix = "bench-propagation:"
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_listener, args=(child, server.url, prefix), daemon=True)
    process.start()
    try:
        assert parent.poll(60) and parent.recv()[0] == "ready"
        registry = _fleet_registry(server, prefix)
        client: Any = server.client()
        while client.pubsub_numsub(f"{prefix}events")[0][1] < 2:
            time.sleep(0.01)
        delays: list[float] = []
        for i in range(scale.n(200)):
            sent = time.time()
            if i % 2 == 0:
                registry.force_open(provider=KEY.provider, model=KEY.model, duration_s=60)
            else:
                registry.reset(provider=KEY.provider, model=KEY.model)
            assert parent.poll(5), "the transition did not reach the other process"
            _kind, arrived = parent.recv()
            while parent.poll(0.02):  # a reset may deliver a second step (the incident's end)
                parent.recv()
            delays.append(arrived - sent)
        registry.close(2)
    finally:
        parent.send("stop")
        process.join(5)
        if process.is_alive():
            process.kill()
    delays.sort()
    p50 = delays[len(delays) // 2]
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    results.figure(
        SECTION, "transition reaches another process, p50", p50 * 1000, "ms", f"{len(delays)} transitions"
    )
    results.figure(SECTION, "transition reaches another process, p99", p99 * 1000, "ms")
    results.targets.append(
        Target(
            "Fleet: transition propagation p99 ≤ 250 ms",
            f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms",
            "≤ 250 ms",
            p99 <= 0.25,
        )
    )


def _latencies(registry: HealthRegistry, n: int) -> list[float]:
    out = []
    record_result = registry.record_result
    for _ in range(n):
        t0 = time.perf_counter()
        record_result(KEY, RESULT)
        out.append(time.perf_counter() - t0)
    return out


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def _killed(results: Results, server: RedisServer, scale: Scale) -> None:
    registry = _fleet_registry(server, "bench-killed:")
    n = scale.n(50_000)
    _latencies(registry, n // 5)
    up = _latencies(registry, n)
    server.kill()
    down = _latencies(registry, n)
    server.start()
    store = registry.fleet
    assert store is not None
    p99_up, p99_down = _p99(up), _p99(down)
    results.figure(SECTION, "record_result p99, Redis up", us(p99_up), "µs")
    results.figure(
        SECTION, "record_result p99, Redis killed", us(p99_down), "µs", f"{store.errors} Redis errors counted"
    )
    results.figure(SECTION, "record_result p99, killed / up", p99_down / p99_up, "×")
    registry.close(2)
