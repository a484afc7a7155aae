"""examples/sentry_bridge.py runs as documented, in its own process (no DSN: events are printed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # runs a subprocess

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sentry_bridge.py"


def test_example_prints_the_captured_events() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # critical model: first failure warning → error, breaker opened error → fatal
    assert "[error] Model failing: openai/gpt-4o via openrouter (first failure, 503)" in out
    assert "[fatal] Model unavailable: openai/gpt-4o via openrouter (breaker opened, 503)" in out
    assert out.count("fingerprint: ['model-health', 'openai', 'openrouter', 'gpt-4o']") == 2
    # each event's trace is the trace holding its reverse-link incident span
    event_traces = re.findall(r"trace: ([0-9a-f]{32})", out)
    span_traces = re.findall(r"incident span in trace ([0-9a-f]{32})", out)
    assert len(event_traces) == 2
    assert sorted(event_traces) == sorted(span_traces)
    assert "captured=2 dropped=0" in out
