"""health_asgi_app through httpx's ASGI transport: routes, filters, status codes, headers, lifespan."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from otel_model_health.asgi import health_asgi_app
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import ManualClock


def _registry() -> tuple[HealthRegistry, ManualClock]:
    clock = ManualClock(start=1000.0)
    registry = HealthRegistry(clock=clock, wall_clock=lambda: 1_700_000_000.0 + clock(), random=_Mid())
    return registry, clock


class _Mid:
    def random(self) -> float:
        return 0.5

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def _fail(registry: HealthRegistry, key: ModelKey, times: int, error_type: str = "503") -> None:
    for _ in range(times):
        registry.record(
            key, Outcome.FAILURE, error_type=error_type, status_code=503, started_at=registry.now()
        )


def _succeed(registry: HealthRegistry, key: ModelKey, times: int = 1) -> None:
    for _ in range(times):
        registry.record(key, Outcome.SUCCESS, latency_s=0.1, started_at=registry.now())


GPT = ModelKey(provider="openai", model="gpt-4o")
MINI = ModelKey(provider="openai", model="gpt-4o-mini")
CLAUDE = ModelKey(provider="anthropic", model="claude-sonnet-4-6", gateway="portkey")
HAIKU = ModelKey(provider="anthropic", model="claude-haiku-4-5")


async def _get(app: Any, url: str, method: str = "GET") -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        return await client.request(method, url)


async def test_empty_registry_summary_shape() -> None:
    registry, _ = _registry()
    response = await _get(health_asgi_app(registry), "/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["models"]["total"] == 0
    assert body["providers"] == {}
    assert datetime.fromisoformat(body["checked_at"]).tzinfo is not None


async def test_summary_counts_and_provider_filter() -> None:
    registry, _ = _registry()
    _succeed(registry, GPT, 5)
    _succeed(registry, MINI, 5)
    _fail(registry, CLAUDE, 5)  # 5 consecutive failures: OPEN → unhealthy
    _succeed(registry, HAIKU, 3)
    app = health_asgi_app(registry)

    body = (await _get(app, "/health")).json()
    assert body["models"]["total"] == 4
    assert body["models"]["healthy"] == 3
    assert body["models"]["unhealthy"] == 1
    assert body["status"] == "degraded"
    assert body["providers"]["openai"] == {"status": "healthy", "models": 2, "unhealthy": 0}
    assert body["providers"]["anthropic"]["unhealthy"] == 1

    filtered = (await _get(app, "/health?provider=OpenAI")).json()
    assert set(filtered["providers"]) == {"openai"}
    assert filtered["models"]["total"] == 2
    assert filtered["status"] == "healthy"


async def test_models_detail() -> None:
    registry, _ = _registry()
    _succeed(registry, GPT, 3)
    _fail(registry, CLAUDE, 5, error_type="overloaded_error")
    app = health_asgi_app(registry)

    response = await _get(app, "/health/models")
    assert response.status_code == 200
    models = {m["model"]: m for m in response.json()["models"]}
    assert set(models) == {"gpt-4o", "claude-sonnet-4-6"}
    gpt = models["gpt-4o"]
    assert gpt["provider"] == "openai"
    assert gpt["gateway"] == "direct"
    assert gpt["status"] == "healthy"
    assert gpt["breaker_state"] == "closed"
    assert gpt["success_rate"] == 1.0
    assert gpt["calls_in_window"] == 3
    assert gpt["last_error_type"] is None
    assert gpt["open_until"] is None
    assert datetime.fromisoformat(gpt["last_outcome_at"]).year == 2023
    claude = models["claude-sonnet-4-6"]
    assert claude["gateway"] == "portkey"
    assert claude["status"] == "unhealthy"
    assert claude["breaker_state"] == "open"
    assert claude["success_rate"] == 0.0
    assert claude["last_error_type"] == "overloaded_error"
    open_until = datetime.fromisoformat(claude["open_until"])
    assert open_until > datetime.fromisoformat(claude["last_outcome_at"])

    only = (await _get(app, "/health/models?provider=anthropic")).json()["models"]
    assert [m["model"] for m in only] == ["claude-sonnet-4-6"]


async def test_status_code_for_unhealthy_is_configurable() -> None:
    registry, _ = _registry()
    _fail(registry, GPT, 5)
    _fail(registry, MINI, 5)  # every openai model unhealthy: provider outage → overall unhealthy
    default_app = health_asgi_app(registry)
    strict_app = health_asgi_app(registry, status_code_unhealthy=503)

    assert (await _get(default_app, "/health")).json()["status"] == "unhealthy"
    assert (await _get(default_app, "/health")).status_code == 200
    response = await _get(strict_app, "/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    # The per-model listing is data, not a check: always 200.
    assert (await _get(strict_app, "/health/models")).status_code == 200


async def test_not_found_and_method_not_allowed() -> None:
    registry, _ = _registry()
    app = health_asgi_app(registry)
    assert (await _get(app, "/")).status_code == 404
    assert (await _get(app, "/healthz")).status_code == 404
    assert (await _get(app, "/health/models/gpt-4o")).status_code == 404
    response = await _get(app, "/health", method="POST")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert (await _get(app, "/health/models", method="DELETE")).status_code == 405
    head = await _get(app, "/health", method="HEAD")
    assert head.status_code == 200
    assert head.content == b""


async def test_custom_prefix_and_root_path() -> None:
    registry, _ = _registry()
    _succeed(registry, GPT)
    app = health_asgi_app(registry, path_prefix="/status/")
    assert (await _get(app, "/status")).json()["models"]["total"] == 1
    assert (await _get(app, "/status/models")).json()["models"][0]["model"] == "gpt-4o"
    assert (await _get(app, "/health")).status_code == 404

    # Mounted under /ops: the server passes the full path and root_path="/ops".
    mounted = health_asgi_app(registry)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "GET", "path": "/ops/health", "root_path": "/ops", "query_string": b""}
    await mounted(scope, receive, send)
    assert sent[0]["status"] == 200


async def test_lifespan_messages() -> None:
    app = health_asgi_app(HealthRegistry())
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_registry_error_is_500_not_a_crash() -> None:
    class Broken:
        def summary(self, *, provider: str | None = None) -> dict[str, Any]:
            raise RuntimeError("boom")

    response = await _get(health_asgi_app(Broken()), "/health")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error"}


@pytest.mark.parametrize("query", ["provider=", "other=1", "provider=%20"])
async def test_empty_or_unrelated_query_means_no_filter(query: str) -> None:
    registry, _ = _registry()
    _succeed(registry, GPT)
    _succeed(registry, HAIKU)
    body = (await _get(health_asgi_app(registry), f"/health?{query}")).json()
    assert body["models"]["total"] == 2
