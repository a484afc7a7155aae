"""The demo's status page server: ``health_asgi_app`` behind the standard library's HTTP server
(``health_server.HealthServer``, which also serves ``MODEL_HEALTH_HTTP_PORT``), bound to 127.0.0.1 only.

The demo must not need an ASGI server package, and the page is a handful of GET requests every few
seconds.
"""

from __future__ import annotations

from typing import Any

from ..health_server import HealthServer


class PageServer:
    """``health_asgi_app`` for ``registry`` on 127.0.0.1:``port`` (0: any free port), in a thread."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self._server = HealthServer(app, "127.0.0.1", port, setting="--ui-port")

    @property
    def url(self) -> str:
        return f"{self._server.url}/health/ui"

    def start(self) -> PageServer:
        self._server.start("otel_model_health.demo.page")
        return self

    def stop(self) -> None:
        self._server.stop()
