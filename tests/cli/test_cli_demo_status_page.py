"""`otel-model-health demo` prints the status page's URL and serves the page while the scenario runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from cli_helpers import start_cli

pytestmark = pytest.mark.integration  # runs a subprocess

SCENARIO = {
    "name": "page",
    "duration_s": 6,
    "breaker": {"open_wait_s": 30, "jitter": 0},
    "models": [{"provider": "openai", "model": "gpt-4o", "calls_per_s": 5}],
    "phases": [{"at": 0.5, "for_s": 5, "model": "gpt-4o", "state": "down"}],
}


def test_the_demo_serves_its_status_page(tmp_path: Path) -> None:
    scenario = tmp_path / "page.json"
    scenario.write_text(json.dumps(SCENARIO), encoding="utf-8")
    demo = start_cli(
        [
            "demo",
            "--scenario",
            str(scenario),
            "--plain",
            "--telemetry-file",
            str(tmp_path / "telemetry.jsonl"),
        ]
    )
    try:
        assert demo.stdout is not None
        url = None
        for line in demo.stdout:
            if line.startswith("Status page: "):
                url = line.split()[2]
                break
        assert url is not None and url.startswith("http://127.0.0.1:") and url.endswith("/health/ui")
        page = httpx.get(url, timeout=5)
        assert page.status_code == 200 and "content-security-policy" in page.headers
        # The breaker of gpt-4o opens during the outage phase; the page's document shows it, live, with
        # the demo's (printed) Sentry event of the opening linked from its incident step.
        model: dict[str, object] = {}
        for _ in range(100):
            document = httpx.get(url + "/data", timeout=5).json()
            model = next((m for m in document["models"] if m["model"] == "gpt-4o"), {})
            steps = model.get("incidents") or []
            if model.get("breaker_state") == "open" and any(s["sentry_event_id"] for s in steps):
                break
            time.sleep(0.1)
        assert model.get("breaker_state") == "open", model
        steps = model["incidents"]
        assert [s["kind"] for s in steps][:2] == ["first_failure", "breaker_opened"]
        assert any(s["sentry_event_id"] for s in steps), steps
        rest, err = demo.communicate(timeout=40)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, err
    assert "Finished after" in rest
