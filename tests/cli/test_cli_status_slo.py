"""`otel-model-health status` prints budget and burn from /health/slo (subprocess against uvicorn)."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_cli
from kit.servers import serve_asgi

from otel_model_health.asgi import health_asgi_app
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.slo import SLO

pytestmark = pytest.mark.integration


def test_status_shows_budget_and_burn() -> None:
    registry = HealthRegistry(slos=[SLO("chat", objective=0.99)])
    key = ModelKey(provider="openai", model="gpt-4o")
    for i in range(50):
        registry.record(key, Outcome.FAILURE if i == 0 else Outcome.SUCCESS, latency_s=0.1)
    with serve_asgi(health_asgi_app(registry)) as url:
        table = run_cli(["status", "--url", f"{url}/health"])
        as_json = run_cli(["status", "--url", f"{url}/health", "--json"])
    lines = table.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("SLO "))
    assert lines[header].split()[:4] == ["SLO", "MODEL", "OBJECTIVE", "BUDGET"]
    row = lines[header + 1]
    # 1 failure in 50 calls against a 1% budget: burn 2x, budget left 1 - 2 = -100%.
    assert row.split()[:4] == ["chat", "openai/gpt-4o", "99%", "-100.0%"]
    assert "1h: 2.00x" in row and "ticket:3d/6h" in row
    (entry,) = json.loads(as_json.stdout)["slos"]
    assert entry["slo"] == "chat" and entry["active_alerts"] == ["ticket:3d/6h"]
