"""A series' history handed to a process that starts later (slo/snapshot.py), on simulated time: the
seeded series reads the same burn rates as the one it came from, counts nothing twice, and refuses what
it cannot line up. The fleet store carries the bytes (tests/fleet/test_fleet_flags.py)."""

from __future__ import annotations

import pytest

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.slo import SLO, BurnRateAlert
from otel_model_health.slo.snapshot import seed
from otel_model_health.testing import ManualClock

KEY = ModelKey(provider="openai", model="gpt-4o")
CHAT = SLO("chat", objective=0.99)
HOUR = 3600.0


def traffic(registry: HealthRegistry, clock: ManualClock, seconds: int, bad_every: int) -> None:
    for i in range(seconds):
        bad = i % bad_every == 0
        registry.record(KEY, Outcome.FAILURE if bad else Outcome.SUCCESS, latency_s=0.2)
        clock.advance(1.0)


def rates(registry: HealthRegistry) -> dict[str, float]:
    (status,) = registry.slo_statuses()
    return {**status.burn_rates, "good": status.good, "bad": status.bad}


def test_a_seeded_series_reads_what_the_fleet_counted() -> None:
    clock = ManualClock(1_000_000 * 60.0)
    old = HealthRegistry(clock=clock, wall_clock=clock, slos=[CHAT])
    traffic(old, clock, int(8 * HOUR), bad_every=40)
    ((_, _, blob),) = old.fleet_slo_snapshots()

    late = HealthRegistry(clock=clock, wall_clock=clock, slos=[CHAT])
    clock.advance(0.5)
    assert late.fleet_slo_seed(KEY, "chat", blob)
    assert not late.fleet_slo_seed(KEY, "chat", blob)  # once: a second copy would count twice
    traffic(old, clock, 600, bad_every=10)  # both count on (the fleet store feeds both the same calls)
    for i in range(600):
        late.record(KEY, Outcome.FAILURE if i % 10 == 0 else Outcome.SUCCESS, latency_s=0.2)
    assert rates(late) == pytest.approx(rates(old))
    assert rates(old)["bad"] == 8 * 90 + 60


def test_a_snapshot_taken_after_the_series_began_is_refused() -> None:
    clock = ManualClock(1_000_000 * 60.0)
    old = HealthRegistry(clock=clock, wall_clock=clock, slos=[CHAT])
    late = HealthRegistry(clock=clock, wall_clock=clock, slos=[CHAT])
    late.record(KEY, Outcome.SUCCESS, latency_s=0.2)  # its series begins now
    clock.advance(1.0)
    traffic(old, clock, 100, bad_every=5)
    ((_, _, blob),) = old.fleet_slo_snapshots()
    assert not late.fleet_slo_seed(KEY, "chat", blob)  # it may hold calls `late` counted itself
    assert rates(late)["good"] == 1


def test_foreign_snapshots_raise_for_the_caller_to_count() -> None:
    clock = ManualClock(1_000_000 * 60.0)
    other = SLO("chat", alerts=(BurnRateAlert("page", 2.0, "30s", "6s"),), period="1h")  # another layout
    old = HealthRegistry(clock=clock, wall_clock=clock, slos=[other])
    old.record(KEY, Outcome.SUCCESS)
    ((_, _, blob),) = old.fleet_slo_snapshots()
    late = HealthRegistry(clock=clock, wall_clock=clock, slos=[CHAT])
    late.record(KEY, Outcome.SUCCESS)
    state = late._store.lookup(KEY)
    assert state is not None and state.slo is not None
    for junk in (blob, b"junk", b'{"v":1}\n', blob.split(b"\n")[0] + b"\nnot zlib"):
        with pytest.raises(ValueError):
            seed(state.slo[0], junk, clock())
