"""The integration guard refuses what only an integration test may do, and nothing else."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from kit.guard import no_processes_or_servers


def test_processes_and_internet_servers_are_refused_and_listed() -> None:
    with no_processes_or_servers() as refused:
        with pytest.raises(RuntimeError, match="not marked `integration`"):
            subprocess.run([sys.executable, "-c", "pass"], check=False)
        with pytest.raises(RuntimeError):
            os.fork()
        with socket.socket() as sock, pytest.raises(RuntimeError):
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            sock.listen()
    assert refused == ["starting a subprocess", "os.fork()", f"listening on ('127.0.0.1', {port})"]


def test_binding_alone_unix_servers_and_socket_pairs_are_allowed(tmp_path: Path) -> None:
    with no_processes_or_servers() as refused:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))  # what urllib3 does on import, to learn whether IPv6 works
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(tmp_path / "s"))
            sock.listen()
        a, b = socket.socketpair()  # what an asyncio event loop makes for itself
        a.close()
        b.close()
    assert refused == []
