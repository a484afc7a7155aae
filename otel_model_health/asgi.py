"""``health_asgi_app``: the registry's health as JSON, as a dependency-free ASGI 3 application.

Routes (relative to where the app is mounted, then ``path_prefix``):

* ``GET /health`` — the summary (docs/health-endpoint.md),
* ``GET /health/models`` — one object per tracked model,
* ``GET /health/slo`` — one object per model and SLO: burn rates, budget left, active alerts (docs/slo.md),

each with an optional ``?provider=`` filter. ``HEAD`` is answered like ``GET`` without a body.
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
from .keys import normalize_provider
from .slo.status import SloStatus, status_json

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


def _iso(epoch_s: float | None) -> str | None:
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat()


def model_detail(state: ModelHealthState) -> dict[str, Any]:
    """One entry of ``GET /health/models``."""
    error = state.last_error
    return {
        "provider": state.key.provider,
        "model": state.key.model,
        "gateway": state.key.gateway,
        "status": state.status.value,
        "breaker_state": state.breaker_state.value,
        "success_rate": state.success_rate,
        "calls_in_window": state.calls_in_window,
        "failures_in_window": state.failures_in_window,
        "consecutive_failures": state.consecutive_failures,
        "last_outcome": None if state.last_outcome is None else state.last_outcome.value,
        "last_outcome_at": _iso(state.last_outcome_at),
        "last_error_type": None if error is None else error.error_type,
        "last_failure_at": _iso(state.last_failure_at),
        "open_until": _iso(state.open_until),
        "rate_limited_until": _iso(state.rate_limited_until),
        "latency_p50_s": state.latency_p50_s,
        "latency_p95_s": state.latency_p95_s,
    }


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
) -> ASGIApp:
    """An ASGI 3 app serving ``registry``'s health (default: the process-wide registry).

    HTTP 200 whatever the status unless configured: a model outage must not take the app's own pods
    out of a load balancer. Set ``status_code_unhealthy=503`` for a check that should fail when any
    provider is in outage, ``status_code_degraded`` likewise for a degraded status.
    """
    prefix = "/" + path_prefix.strip("/") if path_prefix.strip("/") else ""
    models_path = prefix + "/models"
    slo_path = prefix + "/slo"

    def resolve() -> Any:
        return registry if registry is not None else defaults.default_registry()

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
