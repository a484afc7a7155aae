"""Fixtures of the enforcement tests: a registry on a manual clock (its wall clock follows it), with the
breaker settings of each module's ``breaker_config`` fixture, inside in-memory telemetry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kit import Telemetry, make_telemetry

from otel_model_health import BreakerConfig, HealthRegistry
from otel_model_health.testing import ManualClock


@pytest.fixture
def breaker_config() -> BreakerConfig:
    return BreakerConfig()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(100.0)


@pytest.fixture
def t(clock: ManualClock, breaker_config: BreakerConfig) -> Iterator[Telemetry[HealthRegistry]]:
    registry = HealthRegistry(config=breaker_config, clock=clock, wall_clock=lambda: 1e9 + clock())
    telemetry = make_telemetry(registry)
    yield telemetry
    telemetry.shutdown()
