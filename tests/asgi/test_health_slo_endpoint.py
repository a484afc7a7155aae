"""GET /health/slo through httpx's ASGI transport: one entry per model and SLO, with the provider filter."""

from __future__ import annotations

import httpx
import pytest

from otel_model_health.asgi import health_asgi_app
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.slo import SLO
from otel_model_health.testing import ManualClock

GPT = ModelKey(provider="openai", model="gpt-4o")
CLAUDE = ModelKey(provider="anthropic", model="claude-sonnet-4-6")


async def _get(registry: HealthRegistry, url: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=health_asgi_app(registry))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(url)


async def test_slo_document() -> None:
    clock = ManualClock(600_000.0)
    slos = [SLO("openai-chat", objective=0.99, match={"provider": "openai"}), SLO("all", objective=0.9)]
    registry = HealthRegistry(clock=clock, wall_clock=clock, slos=slos)
    for i in range(100):
        registry.record(GPT, Outcome.FAILURE if i < 2 else Outcome.SUCCESS)
        registry.record(CLAUDE, Outcome.SUCCESS)
        clock.advance(1.0)
    response = await _get(registry, "/health/slo")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    entries = {(e["slo"], e["provider"]): e for e in response.json()["slos"]}
    assert set(entries) == {("all", "anthropic"), ("all", "openai"), ("openai-chat", "openai")}
    gpt = entries[("openai-chat", "openai")]
    assert gpt["burn_rates"]["1h"] == pytest.approx(2.0)  # 2% errors against a 1% budget
    assert gpt["error_budget_remaining"] == pytest.approx(-1.0)
    assert (gpt["good_events"], gpt["bad_events"]) == (98, 2)
    assert gpt["active_alerts"] == ["ticket:3d/6h"]  # 2x: a ticket (both windows over 1x), no page
    assert gpt["period"] == "30d" and gpt["sli"] == "availability"
    assert entries[("all", "anthropic")]["error_budget_remaining"] == 1.0
    filtered = await _get(registry, "/health/slo?provider=anthropic")
    assert [(e["slo"], e["model"]) for e in filtered.json()["slos"]] == [("all", "claude-sonnet-4-6")]
