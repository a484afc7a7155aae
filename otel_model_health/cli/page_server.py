"""The demo's status page server: ``health_asgi_app`` behind the standard library's HTTP server.

The demo must not need an ASGI server package, and the page is a handful of GET requests every few
seconds, so each request runs the ASGI app to completion on its own event loop in a server thread.
Bound to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, app: Any) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.app = app


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._run_app("GET")

    def do_HEAD(self) -> None:
        self._run_app("HEAD")

    def _run_app(self, method: str) -> None:
        path, _, query = self.path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode("latin-1", "replace"),
            "query_string": query.encode("latin-1", "replace"),
            "root_path": "",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()],
            "client": self.client_address[:2],
            "server": self.server.server_address[:2],
        }
        messages: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        asyncio.run(self.server.app(scope, receive, send))
        start = messages[0]
        self.send_response(start["status"])
        for name, value in start.get("headers", []):
            self.send_header(name.decode("latin-1"), value.decode("latin-1"))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(b"".join(m.get("body", b"") for m in messages[1:]))

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the demo's output is its own table, not an access log


class PageServer:
    """``health_asgi_app`` for ``registry`` on 127.0.0.1:``port`` (0: any free port), in a thread."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self._server = _Server(port, app)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otel_model_health.demo.page", daemon=True
        )

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/health/ui"

    def start(self) -> PageServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
