"""HTTP GET under one wall-clock deadline, through urllib (so proxies from the environment still apply).

urllib's ``timeout`` bounds each socket operation, not the request: a server that trickles a byte a
second never lets a read time out, and holds the caller as long as it likes. Here every blocking socket
call (connect, TLS handshake, send, receive) first sets the socket's timeout to the time left before the
deadline, so a request, redirects included, ends by then. Only name resolution is not bounded this way.
"""

from __future__ import annotations

import functools
import http.client
import socket
import ssl
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer


class Deadline:
    """A point in time ``seconds`` from now (monotonic clock)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; raises ``TimeoutError`` once the deadline has passed."""
        left = self._at - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete answer within {self.seconds:g} s")
        return left

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self._at


class _Socket(socket.socket):
    deadline: Deadline

    def recv_into(self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0) -> int:
        self.settimeout(self.deadline.left())
        return super().recv_into(buffer, nbytes, flags)

    def sendall(self, data: ReadableBuffer, flags: int = 0, /) -> None:
        self.settimeout(self.deadline.left())
        super().sendall(data, flags)


class _TLSSocket(ssl.SSLSocket):
    # The SSL context creates these, so the deadline cannot be passed in: each Deadline gets a subclass.
    deadline: ClassVar[Deadline]

    def do_handshake(self, block: bool = False) -> None:
        self.settimeout(self.deadline.left())
        super().do_handshake(block)

    def recv_into(self, buffer: WriteableBuffer, nbytes: int | None = None, flags: int = 0) -> int:
        self.settimeout(self.deadline.left())
        return super().recv_into(buffer, nbytes, flags)

    def sendall(self, data: ReadableBuffer, flags: int = 0) -> None:
        self.settimeout(self.deadline.left())
        super().sendall(data, flags)


def _connect(
    deadline: Deadline, address: tuple[str, int], timeout: Any = None, source_address: Any = None
) -> socket.socket:
    """``socket.create_connection`` (the signature http.client calls) within the deadline."""
    raw = socket.create_connection(address, deadline.left(), source_address)
    sock = _Socket(fileno=raw.detach())
    sock.deadline = deadline
    return sock


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, *, deadline: Deadline, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._create_connection = functools.partial(_connect, deadline)


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, *, deadline: Deadline, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._create_connection = functools.partial(_connect, deadline)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_HTTPConnection, deadline=self._deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self._deadline = deadline
        self._tls = ssl.create_default_context()
        self._tls.set_alpn_protocols(["http/1.1"])  # as http.client does with its own default context
        self._tls.sslsocket_class = type("_DeadlineTLSSocket", (_TLSSocket,), {"deadline": deadline})

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(_HTTPSConnection, deadline=self._deadline)
        return self.do_open(connection, req, context=self._tls)


def get(url: str, deadline: Deadline, *, max_bytes: int) -> tuple[int, bytes]:
    """GET ``url`` (JSON wanted): its status and at most ``max_bytes + 1`` bytes of its body, whatever
    the status. Raises ``TimeoutError`` at the deadline; ``OSError`` (``URLError`` included),
    ``http.client.HTTPException`` or ``ValueError`` when there is no HTTP answer to read."""
    opener = urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline))
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with opener.open(request, timeout=deadline.left()) as response:
            return response.status, response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(max_bytes + 1)
