"""Fixtures every test directory shares, and the guard that keeps the unit run free of processes and
servers: a test not marked ``integration`` fails if it starts a process or binds an internet socket, so
``pytest -m "not integration"`` (the inner loop) stays fast and the marker stays honest."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kit import ListRecorder, Telemetry, make_telemetry

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


# --- the integration guard ---------------------------------------------------------------------------

_INET = (socket.AF_INET, socket.AF_INET6)


@contextmanager
def _no_processes_or_servers() -> Iterator[list[str]]:
    """Refuse subprocesses, fork() and binding an AF_INET(6) socket (from any thread); yield what was
    refused, so a refusal the code under test swallowed still fails the test."""
    refused: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def refused_call(*args: Any, **kwargs: Any) -> Any:
            refused.append(what)
            raise RuntimeError(f"{what} in a test not marked `integration`")

        return refused_call

    real_bind = socket.socket.bind

    def bind(sock: socket.socket, address: Any) -> None:
        if sock.family in _INET:
            refuse(f"binding {address!r}")()
        real_bind(sock, address)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subprocess.Popen, "__init__", refuse("starting a subprocess"))
        mp.setattr(os, "fork", refuse("os.fork()"))
        mp.setattr(socket.socket, "bind", bind)
        yield refused


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
    with _no_processes_or_servers() as refused:
        result = yield
    if refused:
        pytest.fail(f"{item.nodeid}: {refused[0]}; mark the test `integration`", pytrace=False)
    return result
