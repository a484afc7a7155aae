"""Fixtures of the transport tests: in-memory OTel providers and the simulated provider on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from transport_kit import Telemetry, make_telemetry

from otel_model_health.testing import SimulatedProvider


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = make_telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


@pytest.fixture
def sim() -> Iterator[SimulatedProvider]:
    with SimulatedProvider() as provider:
        yield provider
