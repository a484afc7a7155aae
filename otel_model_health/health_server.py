"""``HealthServer``: an ASGI app (``health_asgi_app``) served from a daemon thread by the standard library.

A zero-code app (``opentelemetry-instrument python app.py``) has no web framework to mount ``/health`` in,
so ``MODEL_HEALTH_HTTP_PORT`` makes ``configure()`` start one of these; the demo serves its status page
with one too. ``http.server`` keeps it free of dependencies. Each connection gets a daemon thread and
each request runs the app to completion on its own event loop: a health checker or a browser holding a
connection open (or a slow client) must not stop the others from being answered.

The adapter is generic ASGI 3 (scope, ``http.request`` in, ``http.response.start`` / ``body`` out), so
whatever the ASGI app serves (the status page too, later) is served here unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import urlsplit

from ._internal import report_internal_error
from .asgi import ASGIApp, Message

logger: Final = logging.getLogger("otel_model_health")

_MAX_BODY: Final = 64 * 1024  # /health takes no body; a larger one is not read


class _Server(ThreadingHTTPServer):
    app: ASGIApp
    daemon_threads = True  # a connection still open never holds up the app's exit
    # A restart must not wait out TIME_WAIT on the port it just used.
    allow_reuse_address = True


async def _complete(awaitable: Awaitable[None]) -> None:
    await awaitable  # asyncio.run takes a coroutine; an ASGI app returns any awaitable


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "otel-model-health"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = 0
        body = self.rfile.read(length) if 0 < length <= _MAX_BODY else b""
        split = urlsplit(self.path)
        host, port = self.server.server_address[:2]
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": self.command,
            "scheme": "http",
            "path": split.path or "/",
            "raw_path": split.path.encode("latin-1", "replace"),
            "query_string": split.query.encode("latin-1", "replace"),
            "root_path": "",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()],
            "client": self.client_address[:2],
            "server": (str(host), int(port)),
        }
        status, headers, chunks = 500, [], []
        sent_request = False

        async def receive() -> Message:
            nonlocal sent_request
            if sent_request:
                return {"type": "http.disconnect"}
            sent_request = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers") or [])
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body") or b""))

        try:
            asyncio.run(_complete(self.server.app(scope, receive, send)))
        except Exception:
            report_internal_error("health_server")
            status, headers, chunks = 500, [(b"content-type", b"text/plain")], [b"internal error"]
        payload = b"".join(chunks)
        self.send_response(status)
        names = set()
        for name, value in headers:
            names.add(name.lower())
            self.send_header(name.decode("latin-1"), value.decode("latin-1"))
        if b"content-length" not in names:
            self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("health server: " + format, *args)


class HealthServer:
    """Serves ``app`` on ``host:port`` from a daemon thread once ``start()`` is called. ``setting``: what
    chose the address, named when it cannot be bound."""

    def __init__(
        self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *, setting: str = "MODEL_HEALTH_HTTP_PORT"
    ) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._setting = setting
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, thread_name: str = "model-health-http") -> HealthServer:
        """Bind and serve; an address that cannot be bound raises ``OSError`` naming it."""
        try:
            server = _Server((self._host, self._port), _Handler)
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"cannot serve on {self._host}:{self._port} ({self._setting}): {exc}",
            ) from exc
        server.app = self._app
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5}, name=thread_name, daemon=True
        )
        self._thread.start()
        logger.info("serving /health on %s", self.url)
        return self

    @property
    def url(self) -> str:
        """``http://host:port`` as bound (the real port when 0 was asked)."""
        if self._server is None:
            return f"http://{self._host}:{self._port}"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        """Stop serving and close the socket; idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        thread = self._thread
        if thread is not None:
            thread.join(5)
