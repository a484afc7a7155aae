"""`otel-model-health demo` as a subprocess: a compact scenario, its incidents, recoveries and exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import run_cli

pytestmark = pytest.mark.integration  # runs a subprocess

COMPACT = {
    "name": "compact",
    "duration_s": 8,
    # A short, fixed OPEN wait (no backoff, no jitter) so both recoveries fit in 8 s.
    "breaker": {"open_wait_s": 1.5, "max_open_wait_s": 1.5, "jitter": 0},
    "models": [
        {"provider": "openai", "model": "gpt-4o", "calls_per_s": 4},
        {"provider": "openai", "model": "gpt-4o-mini", "client": "monitor", "calls_per_s": 3},
        {"provider": "anthropic", "model": "claude-haiku-4-5", "calls_per_s": 4},
    ],
    "phases": [
        {"at": 1, "for_s": 2, "model": "gpt-4o", "state": "down"},
        {
            "at": 1,
            "for_s": 2,
            "model": "claude-haiku-4-5",
            "state": "down",
            "fault": {"kind": "status", "http_status": 529},
        },
        {"at": 4, "for_s": 2, "model": "gpt-4o-mini", "state": "rate_limited", "probability": 1},
    ],
}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, str, Path]:
    tmp = tmp_path_factory.mktemp("demo")
    scenario = tmp / "compact.json"
    scenario.write_text(json.dumps(COMPACT), encoding="utf-8")
    telemetry = tmp / "telemetry.jsonl"
    result = run_cli(
        ["demo", "--scenario", str(scenario), "--duration", "8", "--telemetry-file", str(telemetry)],
        timeout=40,
    )
    return result.returncode, result.stdout, result.stderr, telemetry


def _lines(out: str, *needles: str) -> list[str]:
    return [line for line in out.splitlines() if all(n in line for n in needles)]


def test_exits_zero_with_plain_output(demo_run: tuple[int, str, str, Path]) -> None:
    code, out, err, _ = demo_run
    assert code == 0, err
    assert "\x1b[" not in out  # not a TTY: no ANSI escapes
    assert "Finished after" in out
    assert "OPEN waits 1.5 s here (library default 30 s)" in out


@pytest.mark.parametrize(
    ("model", "error"),
    [("openai/gpt-4o via direct", "503"), ("anthropic/claude-haiku-4-5 via direct", "529")],
)
def test_each_model_taken_down_is_unhealthy_with_its_error_then_recovers(
    demo_run: tuple[int, str, str, Path], model: str, error: str
) -> None:
    _, out, _, _ = demo_run
    opened = _lines(out, model, "BREAKER OPENED")
    assert opened, out
    assert f"error {error}" in opened[0]
    assert "status unhealthy" in opened[0]
    assert _lines(out, model, "RECOVERED", "breaker closed, status healthy"), out
    # The summary names the incident with its error type and figures.
    summary = out.split("\nIncidents\n", 1)[1]
    assert f"{model} — errors: {error}" in summary
    block = summary.split(model, 1)[1]
    assert re.search(r"time to detect:\s+\d+\.\d s \(fault start → breaker opened\)", block)
    assert re.search(r"time to recover:\s+-?\d+\.\d s \(fault end → breaker closed\)", block)


def test_rate_limits_are_not_incidents(demo_run: tuple[int, str, str, Path]) -> None:
    _, out, _, _ = demo_run
    assert not _lines(out, "gpt-4o-mini", "BREAKER OPENED")
    assert re.search(r"openai/gpt-4o-mini via direct: [1-9]\d* rate-limited calls", out)


def test_sentry_events_are_printed_without_a_dsn(demo_run: tuple[int, str, str, Path]) -> None:
    _, out, _, _ = demo_run
    assert _lines(out, "sentry [error] Model unavailable: openai/gpt-4o via direct (breaker opened, 503)")
    assert re.search(r"Sentry: [1-9]\d* events printed above", out)


def test_spans_and_metrics_are_written_as_json_lines(demo_run: tuple[int, str, str, Path]) -> None:
    _, out, _, telemetry = demo_run
    assert f"JSON lines in {telemetry}" in out
    documents = [json.loads(line) for line in telemetry.read_text(encoding="utf-8").splitlines()]
    spans = [d for d in documents if "name" in d and "context" in d]
    metrics = [d for d in documents if "resource_metrics" in d]
    failed = [s for s in spans if s["name"] == "chat gpt-4o" and s["attributes"].get("error.type") == "503"]
    assert failed
    assert {s["attributes"]["gen_ai.provider.name"] for s in spans} >= {"openai", "anthropic"}
    names = {
        m["name"]
        for doc in metrics
        for rm in doc["resource_metrics"]
        for sm in rm["scope_metrics"]
        for m in sm["metrics"]
    }
    assert {"gen_ai.client.operation.duration", "model_health.breaker.state"} <= names
