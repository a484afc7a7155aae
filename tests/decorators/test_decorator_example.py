"""examples/decorate_openai_client.py runs against the simulated provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otel_model_health.testing import SimulatedProvider

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "decorate_openai_client.py"


def _run(provider: SimulatedProvider) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OPENAI_BASE_URL": provider.openai_base_url,
        "OPENAI_API_KEY": "sk-test",
        "MODEL_HEALTH_GATEWAY": "simulated",
    }
    return subprocess.run(
        [sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_example_reports_healthy_models() -> None:
    with SimulatedProvider() as provider:
        done = _run(provider)
        requests = provider.requests
    assert done.returncode == 0, done.stderr
    assert "answer:" in done.stdout
    assert "streamed:" in done.stdout
    summary = json.loads(done.stdout[done.stdout.index("{") :])
    assert summary["status"] == "healthy"
    assert summary["models"]["total"] == 2  # gpt-4o and gpt-4o-mini
    assert summary["providers"]["openai"]["models"] == 2
    assert len(requests) == 4


def test_example_reports_a_failing_model() -> None:
    from otel_model_health.testing import Fault

    with SimulatedProvider() as provider:
        provider.script("gpt-4o-mini", Fault.status(404, error_type="not_found_error"), api=None)
        done = _run(provider)
    assert done.returncode != 0
    assert "NotFoundError" in done.stderr
