"""SLO metrics over OTLP: configure() with the SLO file named by MODEL_HEALTH_SLO_FILE, in a child
process, exporting http/protobuf to the real oteltap receiver."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from otlp_receivers import (  # noqa: F401  (fixtures)
    CHILD_CALLS,
    REPO,
    OtelTap,
    attributes,
    data_points,
    oteltap_fixture,
    run_child,
)

pytestmark = pytest.mark.integration


def test_slo_metrics_reach_oteltap(oteltap: OtelTap) -> None:
    model = f"slo-{uuid.uuid4().hex[:8]}"
    run_child(
        CHILD_CALLS.format(model=model, calls=3, failures=2, configure_args=""),
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": oteltap.endpoint,
            "MODEL_HEALTH_SLO_FILE": str(REPO / "examples" / "slos.toml"),
        },
    )

    def points(name: str) -> list[Any]:
        return [
            p
            for m in oteltap.metrics
            if m.name == name
            for p in data_points(m)
            if attributes(p).get("gen_ai.request.model") == model
        ]

    burn = oteltap.wait_for(lambda t: points("model_health.slo.burn_rate"), describe="slo burn rates")
    # examples/slos.toml: "chat-latency" (99%) matches every model; 2 of 5 calls failed: burn 40.
    by_window = {attributes(p)["model_health.slo.window"]: p.as_double for p in burn}
    assert set(by_window) == {"5m", "30m", "1h", "6h", "3d", "30d"}
    assert all(rate == pytest.approx(40.0) for rate in by_window.values())
    assert {attributes(p)["model_health.slo.name"] for p in burn} == {"chat-latency"}
    (budget,) = points("model_health.slo.error_budget.remaining")
    assert budget.as_double == pytest.approx(-39.0)
    alerts = {attributes(p)["model_health.slo.severity"]: p.as_int for p in points("model_health.slo.alerts")}
    assert alerts == {"page": 2, "ticket": 1}
