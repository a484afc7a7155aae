"""The demo with SLOs: the built-in slo.json parses, and a compact SLO scenario pages on a hard outage
(subprocess) and prints the budget and burn table at the end."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from cli_helpers import run_cli

from otel_model_health.cli.scenario import parse_scenario

COMPACT_SLO = {
    "name": "compact-slo",
    "duration_s": 8,
    "breaker": {"open_wait_s": 30},
    "models": [{"provider": "openai", "model": "gpt-4o", "calls_per_s": 10, "stream_every": 0}],
    "slos": [
        {
            "name": "chat",
            "objective": 0.99,
            "period": "10m",
            "alerts": [{"severity": "page", "burn_rate": 14.4, "long_window": "60s", "short_window": "5s"}],
        }
    ],
    "phases": [{"at": 3, "for_s": 5, "model": "gpt-4o", "state": "down"}],
}


def test_builtin_slo_scenario_parses() -> None:
    text = resources.files("otel_model_health.cli").joinpath("scenarios", "slo.json").read_text()
    scenario = parse_scenario(json.loads(text))
    (slo,) = scenario.slos
    assert [(a.severity, a.burn_rate) for a in slo.alerts] == [("page", 14.4), ("ticket", 1.0)]
    degrading = scenario.phases[0]
    assert degrading.probability == 0.03  # a slow 3% error rate: burn 3x, a ticket and no page


@pytest.mark.integration
def test_demo_pages_on_a_hard_outage_and_prints_the_slo_table(tmp_path: Path) -> None:
    scenario = tmp_path / "slo.json"
    scenario.write_text(json.dumps(COMPACT_SLO), encoding="utf-8")
    result = run_cli(
        ["demo", "--scenario", str(scenario), "--telemetry-file", str(tmp_path / "t.jsonl")], timeout=40
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert any("SLO ALERT" in line and "page chat" in line for line in out.splitlines()), out
    assert "sentry [error] SLO page: chat for openai/gpt-4o via direct" in out
    table = out[out.index("SLOs (budget left") :].splitlines()
    assert table[1].split()[:4] == ["SLO", "MODEL", "OBJECTIVE", "BUDGET"]
    assert table[2].split()[:3] == ["chat", "openai/gpt-4o", "99%"]
