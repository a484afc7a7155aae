"""What a test not marked ``integration`` may not do: start a process (subprocess, fork) or listen on an
internet socket (a server, from any thread). Binding alone is allowed: urllib3 binds ('::1', 0) when it is
first imported, to learn whether IPv6 works. tests/conftest.py applies it to every phase of such a test,
so ``pytest -m "not integration"`` stays fast and the marker stays honest."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

_INET = (socket.AF_INET, socket.AF_INET6)


@contextmanager
def no_processes_or_servers() -> Iterator[list[str]]:
    """Refuse those calls with a RuntimeError; yield the list of what was refused, so a refusal that the
    code under test caught and swallowed can still fail the test."""
    refused: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def refused_call(*args: Any, **kwargs: Any) -> Any:
            refused.append(what)
            raise RuntimeError(f"{what} in a test not marked `integration`")

        return refused_call

    real_listen = socket.socket.listen

    def listen(sock: socket.socket, *backlog: int) -> None:
        if sock.family in _INET:
            refuse(f"listening on {sock.getsockname()!r}")()
        real_listen(sock, *backlog)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subprocess.Popen, "__init__", refuse("starting a subprocess"))
        mp.setattr(os, "fork", refuse("os.fork()"))
        mp.setattr(socket.socket, "listen", listen)
        yield refused
