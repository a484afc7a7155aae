"""``health_asgi_app``: the registry's health as JSON, as a dependency-free ASGI 3 application.

Routes (relative to where the app is mounted, then ``path_prefix``):

* ``GET /health`` — the summary (docs/health-endpoint.md),
* ``GET /health/models`` — one object per tracked model,
* ``GET /health/slo`` — one object per model and SLO: burn rates, budget left, active alerts (docs/slo.md),

each with an optional ``?provider=`` filter; and the status page (``status_page/``): ``GET /health/ui``,
its script, stylesheet and JSON document (``/health/ui/data``). ``HEAD`` is answered like ``GET``
without a body.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qs

from . import defaults
from ._internal import report_internal_error
from .health.types import ModelHealthState
from .health_document import model_detail
from .keys import normalize_provider
from .slo.status import SloStatus, status_json
from .status_page import Auth, SentryEvents, StatusPage

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# A health document describes "now": no proxy or browser may serve an old one.
_HEADERS: Final = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
]


def _route_path(scope: Scope) -> str:
    """The path as the app sees it where it is mounted.

    Starlette's ``Mount`` (>= 0.33) and uvicorn's ``--root-path`` keep the full path in ``path`` and put
    the mount point in ``root_path``; older mounts strip it from ``path``. Both are handled like
    Starlette's own ``get_route_path``.
    """
    path: str = scope.get("path") or "/"
    root_path: str = scope.get("root_path") or ""
    if root_path and (path == root_path or path.startswith(root_path + "/")):
        path = path[len(root_path) :] or "/"
    return path


def _provider_filter(scope: Scope) -> str | None:
    raw = scope.get("query_string") or b""
    values = parse_qs(raw.decode("latin-1")).get("provider")
    if not values or not values[0].strip():
        return None
    return normalize_provider(values[0])


def health_asgi_app(
    registry: Any = None,
    *,
    status_code_unhealthy: int = 200,
    status_code_degraded: int = 200,
    path_prefix: str = "/health",
    ui: bool = True,
    auth: Auth | None = None,
    trace_url_template: str | None = None,
    sentry: SentryEvents | None = None,
    sentry_url_template: str | None = None,
    poll_interval_s: float = 2.0,
) -> ASGIApp:
    """An ASGI 3 app serving ``registry``'s health (default: the process-wide registry).

    HTTP 200 whatever the status unless configured: a model outage must not take the app's own pods
    out of a load balancer. Set ``status_code_unhealthy=503`` for a check that should fail when any
    provider is in outage, ``status_code_degraded`` likewise for a degraded status.

    The status page at ``<path_prefix>/ui`` (``ui=False`` turns it off) polls its document every
    ``poll_interval_s``. ``auth(scope)`` (sync or async) returns whether a request may see the page;
    without it the page is as open as the JSON routes. ``trace_url_template`` (``{trace_id}``,
    ``{span_id}``) links each incident step to its trace; ``sentry`` (a ``SentryBridge``) gives the
    id of the Sentry event sent for a step, linked through ``sentry_url_template`` (``{event_id}``).
    """
    prefix = "/" + path_prefix.strip("/") if path_prefix.strip("/") else ""
    models_path = prefix + "/models"
    slo_path = prefix + "/slo"

    def resolve() -> Any:
        return registry if registry is not None else defaults.default_registry()

    ui_path = prefix + "/ui"
    page = (
        StatusPage(
            resolve,
            auth=auth,
            trace_url_template=trace_url_template,
            sentry=sentry,
            sentry_url_template=sentry_url_template,
            poll_interval_s=poll_interval_s,
        )
        if ui
        else None
    )

    def summary_document(provider: str | None) -> tuple[int, dict[str, Any]]:
        document: dict[str, Any] = resolve().summary(provider=provider)
        status = document.get("status")
        if status == "unhealthy":
            return status_code_unhealthy, document
        if status == "degraded":
            return status_code_degraded, document
        return 200, document

    def models_document(provider: str | None) -> tuple[int, dict[str, Any]]:
        states: list[ModelHealthState] = resolve().snapshot()
        models = [model_detail(s) for s in states if provider is None or s.key.provider == provider]
        checked_at = datetime.now(tz=UTC).isoformat()
        return 200, {"models": models, "checked_at": checked_at}

    def slo_document(provider: str | None) -> tuple[int, dict[str, Any]]:
        statuses: list[SloStatus] = resolve().slo_statuses()
        slos = [status_json(s) for s in statuses if provider is None or s.key.provider == provider]
        return 200, {"slos": slos, "checked_at": datetime.now(tz=UTC).isoformat()}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            return  # websockets and unknown scope types: not ours; closing without a response declines
        path = _route_path(scope)
        if page is not None and path.startswith(ui_path) and page.handles(path[len(ui_path) :]):
            if scope.get("method", "GET") not in ("GET", "HEAD"):
                await _respond(send, 405, {"error": "method not allowed"}, allow=True)
                return
            base = (scope.get("root_path") or "").rstrip("/") + ui_path
            await page(scope, send, path[len(ui_path) :], base)
            return
        if path not in (
            prefix or "/",
            models_path,
            prefix + "/",
            models_path + "/",
            slo_path,
            slo_path + "/",
        ):
            await _respond(send, 404, {"error": "not found"})
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, {"error": "method not allowed"}, allow=True)
            return
        try:
            provider = _provider_filter(scope)
            if path.rstrip("/") == models_path:
                status, document = models_document(provider)
            elif path.rstrip("/") == slo_path:
                status, document = slo_document(provider)
            else:
                status, document = summary_document(provider)
        except Exception:
            report_internal_error("health_asgi_app")
            await _respond(send, 500, {"error": "internal error"})
            return
        await _respond(send, status, document, head=method == "HEAD")

    return app


async def _lifespan(receive: Receive, send: Send) -> None:
    # Nothing to set up or tear down; answering lets servers that require lifespan support start.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(
    send: Send, status: int, document: dict[str, Any], *, head: bool = False, allow: bool = False
) -> None:
    body = json.dumps(document, separators=(",", ":")).encode()
    headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
    if allow:
        headers.append((b"allow", b"GET, HEAD"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
