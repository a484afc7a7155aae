"""The transport examples run as a user would run them, against the simulated provider."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration  # runs the examples against the simulated provider

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script)],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_openai_example(sim: SimulatedProvider) -> None:
    sim.script("gpt-4o-mini", Fault.status(503), times=1)  # the SDK retries it: one failure, one success
    out = _run(
        "openai_transport.py", {"OPENAI_BASE_URL": sim.openai_base_url, "OPENAI_API_KEY": "sk-test-example"}
    )
    spans = [line for line in out.splitlines() if line.startswith("span:")]
    assert [s.split(" outcome=")[1].split()[0] for s in spans] == ["failure", "success", "success"]
    assert "answer: " in out and "streamed: " in out
    assert "health: openai/gpt-4o-mini@self_hosted status=" in out


def test_anthropic_example(sim: SimulatedProvider) -> None:
    out = _run(
        "anthropic_transport.py",
        {"ANTHROPIC_BASE_URL": sim.anthropic_base_url, "ANTHROPIC_API_KEY": "sk-ant-test-example"},
    )
    lines = [line for line in out.splitlines() if line.startswith("span:")]
    ours = [line for line in lines if "scope=otel_model_health" in line]
    sdk = [line for line in lines if "scope=otel_model_health" not in line]
    assert len(ours) == 2 and len(sdk) == 2
    sdk_ids = {line.split(" id=")[1].split()[0] for line in sdk}
    assert all(line.split(" parent=")[1].split()[0] in sdk_ids for line in ours)
    assert "health: anthropic/claude-sonnet-4-6@self_hosted status=healthy" in out
