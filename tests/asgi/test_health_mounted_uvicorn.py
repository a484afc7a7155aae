"""health_asgi_app mounted in a real Starlette app, served by uvicorn on 127.0.0.1 (ephemeral port)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from kit.servers import serve_asgi
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from otel_model_health.asgi import health_asgi_app
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome

pytestmark = pytest.mark.integration  # uvicorn on 127.0.0.1


@pytest.fixture
def served() -> Iterator[tuple[str, HealthRegistry]]:
    registry = HealthRegistry()
    registry.record(ModelKey(provider="openai", model="gpt-4o"), Outcome.SUCCESS, latency_s=0.1)
    for _ in range(5):
        registry.record(
            ModelKey(provider="anthropic", model="claude-haiku-4-5"), Outcome.FAILURE, error_type="529"
        )

    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("app")

    app = Starlette(
        routes=[Route("/", home), Mount("/ops", app=health_asgi_app(registry, status_code_unhealthy=503))]
    )
    with serve_asgi(app, lifespan="on") as url:
        yield url, registry


def test_mounted_under_ops(served: tuple[str, HealthRegistry]) -> None:
    base, _ = served
    with httpx.Client(base_url=base) as client:
        assert client.get("/").text == "app"
        summary = client.get("/ops/health")
        assert summary.status_code == 200  # one model unhealthy, no provider outage: degraded
        assert summary.headers["content-type"] == "application/json"
        assert summary.json()["status"] == "degraded"
        assert summary.json()["models"] == {
            "total": 2,
            "healthy": 1,
            "degraded": 0,
            "unhealthy": 1,
            "stale": 0,
            "unknown": 0,
        }
        models = client.get("/ops/health/models", params={"provider": "anthropic"}).json()["models"]
        assert [(m["model"], m["breaker_state"], m["last_error_type"]) for m in models] == [
            ("claude-haiku-4-5", "open", "529")
        ]
        assert client.get("/ops/nope").status_code == 404
        assert client.post("/ops/health").status_code == 405
        assert client.get("/health").status_code == 404  # only under the mount


def test_unhealthy_status_code_through_the_server(served: tuple[str, HealthRegistry]) -> None:
    base, registry = served
    for _ in range(5):
        registry.record(
            ModelKey(provider="anthropic", model="claude-sonnet-4-6"), Outcome.FAILURE, error_type="529"
        )
    with httpx.Client(base_url=base) as client:
        response = client.get("/ops/health", params={"provider": "anthropic"})
    assert response.json()["status"] == "unhealthy"  # every anthropic model down: provider outage
    assert response.status_code == 503
