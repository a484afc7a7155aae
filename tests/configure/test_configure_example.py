"""examples/configure_otlp.py runs and its telemetry reaches a real OTLP/HTTP receiver (oteltap)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from otlp_receivers import REPO, OtelTap, attributes, child_env, data_points, oteltap_fixture  # noqa: F401

pytestmark = pytest.mark.integration


def test_example_exports_transport_and_decorator_telemetry(oteltap: OtelTap) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "configure_otlp.py")],
        env=child_env({"OTEL_EXPORTER_OTLP_ENDPOINT": oteltap.endpoint, "OTEL_SERVICE_NAME": "example"}),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "flaky-model: unhealthy open" in result.stdout
    assert "decorated: gpt-4o" in result.stdout

    def spans_by_model(tap: OtelTap) -> dict[str, list[dict[str, object]]]:
        found: dict[str, list[dict[str, object]]] = {}
        for span in tap.spans:
            attrs = attributes(span)
            if attrs.get("model_health.gateway") == "simulated":
                found.setdefault(str(attrs["gen_ai.request.model"]), []).append(attrs)
        return found if sum(len(v) for v in found.values()) >= 11 else {}

    spans = oteltap.wait_for(spans_by_model, describe="11 spans of the example")
    assert len(spans["gpt-4o-mini"]) == 5 and len(spans["flaky-model"]) == 5 and len(spans["gpt-4o"]) == 1
    assert {s["model_health.outcome"] for s in spans["flaky-model"]} == {"failure"}
    assert {s["http.response.status_code"] for s in spans["flaky-model"]} == {503}
    assert all(s["gen_ai.provider.name"] == "openai" for v in spans.values() for s in v)
    assert all(s.get("gen_ai.usage.input_tokens") for s in spans["gpt-4o-mini"])

    def breaker_open(tap: OtelTap) -> bool:
        return any(
            attributes(p).get("gen_ai.request.model") == "flaky-model"
            and attributes(p).get("model_health.breaker.state") == "open"
            and p.as_int == 1
            for m in tap.metrics
            if m.name == "model_health.breaker.state"
            for p in data_points(m)
        )

    assert oteltap.wait_for(breaker_open, describe="model_health.breaker.state open=1 for flaky-model")
