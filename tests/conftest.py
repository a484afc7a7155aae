"""Fixtures every test directory shares, and the integration guard (tests/kit/guard.py): a test not marked
``integration`` fails if it starts a process or a server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kit import ListRecorder, Telemetry, make_telemetry
from kit.guard import no_processes_or_servers

from otel_model_health.testing import SimulatedProvider


@pytest.fixture
def telemetry() -> Iterator[Telemetry[ListRecorder]]:
    t = make_telemetry(ListRecorder())
    yield t
    t.shutdown()


@pytest.fixture
def sim() -> Iterator[SimulatedProvider]:
    """The simulated provider on 127.0.0.1 (a test using it is marked ``integration``)."""
    with SimulatedProvider() as provider:
        yield provider


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    return (yield from _guarded(item))


def _guarded(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("integration") is not None:
        return (yield)
    with no_processes_or_servers() as refused:
        result = yield
    if refused:
        pytest.fail(f"{item.nodeid}: {refused[0]}; mark the test `integration`", pytrace=False)
    return result
