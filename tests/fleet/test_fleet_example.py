"""examples/fleet_workers.py runs against a real redis-server and the simulated provider: three workers
stop calling a failing model after the fleet's failures, not after five each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kit.redis_server import RedisServer

from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_workers_share_one_verdict(redis_srv: RedisServer, sim: SimulatedProvider) -> None:
    sim.script("flaky-model", Fault.status(503))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MODEL_HEALTH_REDIS_URL": redis_srv.url,
        "OPENAI_BASE_URL": sim.openai_base_url,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_MODEL": "flaky-model",
    }
    command = [sys.executable, str(REPO / "examples" / "fleet_workers.py")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len([line for line in lines if line.endswith("available=False")]) == 3, result.stdout
    failed = int(lines[-1].rsplit(" ", 1)[1])
    assert 5 <= failed <= 6, result.stdout  # separate registries would need 5 failures in each: 15
