"""`otel-model-health status` as a subprocess against health_asgi_app served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from cli_helpers import run_cli
from kit.servers import serve_asgi

from otel_model_health.asgi import health_asgi_app
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome

pytestmark = pytest.mark.integration  # a subprocess against uvicorn on 127.0.0.1


@pytest.fixture(scope="module")
def healthy_app() -> Iterator[str]:
    registry = HealthRegistry()
    registry.record(ModelKey(provider="openai", model="gpt-4o"), Outcome.SUCCESS, latency_s=0.12)
    with serve_asgi(health_asgi_app(registry)) as url:
        yield url


@pytest.fixture(scope="module")
def outage_app() -> Iterator[str]:
    registry = HealthRegistry()
    registry.record(ModelKey(provider="openai", model="gpt-4o"), Outcome.SUCCESS, latency_s=0.12)
    for model in ("claude-a", "claude-b"):
        for _ in range(5):
            registry.record(ModelKey(provider="anthropic", model=model), Outcome.FAILURE, error_type="529")
    # This app answers 503 when unhealthy: still a health document, not an error.
    with serve_asgi(health_asgi_app(registry, status_code_unhealthy=503)) as url:
        yield url


@pytest.fixture(scope="module")
def text_app() -> Iterator[str]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"OK"})

    with serve_asgi(app) as url:
        yield url


def test_healthy_app_exits_0(healthy_app: str) -> None:
    for url in (f"{healthy_app}/health", healthy_app, f"{healthy_app}/health/models"):
        result = run_cli(["status", "--url", url])
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith(f"{healthy_app}/health — checked at ")
        assert lines[1].split()[:4] == ["MODEL", "PROVIDER", "GATEWAY", "STATUS"]
        assert lines[2].split()[:7] == ["gpt-4o", "openai", "direct", "healthy", "100%", "of", "1"]
        assert "120ms" in lines[2]
        assert lines[-1] == "overall: healthy — 1 model: 1 healthy"


def test_provider_outage_exits_1_with_the_table(outage_app: str) -> None:
    result = run_cli(["status", "--url", f"{outage_app}/health"])
    assert result.returncode == 1, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:-1]}
    assert rows["claude-a"][3] == "unhealthy" and rows["claude-a"][-1] == "529"
    assert rows["gpt-4o"][3] == "healthy"
    assert result.stdout.splitlines()[-1] == (
        "overall: unhealthy — 3 models: 1 healthy, 2 unhealthy; provider outage: anthropic"
    )
    only_openai = run_cli(["status", "--url", f"{outage_app}/health", "--provider", "openai"])
    assert only_openai.returncode == 0
    assert "claude" not in only_openai.stdout


def test_json_output(outage_app: str) -> None:
    import json

    result = run_cli(["status", "--url", outage_app, "--json"])
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["summary"]["status"] == "unhealthy"
    assert len(document["models"]) == 3


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("{healthy}/nope", "answered HTTP 404"),
        ("{text}/health", "did not answer JSON"),
        ("http://127.0.0.1:{closed}/health", "cannot reach"),
        ("localhost:8000/health", "--url must be an http(s) URL"),
    ],
)
def test_unreachable_or_bad_answers_exit_2(healthy_app: str, text_app: str, url: str, message: str) -> None:
    result = run_cli(
        ["status", "--url", url.format(healthy=healthy_app, text=text_app, closed=_closed_port())]
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.startswith("otel-model-health status: error: ")
