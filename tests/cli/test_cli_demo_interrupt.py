"""Ctrl-C during `demo`: every thread stops, the summary is printed, exit code 130."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from cli_helpers import start_cli

pytestmark = pytest.mark.integration  # runs a subprocess


def test_ctrl_c_ends_cleanly_with_the_summary(tmp_path: Path) -> None:
    telemetry = tmp_path / "telemetry.jsonl"
    process = start_cli(["demo", "--duration", "60", "--telemetry-file", str(telemetry)])
    try:
        assert process.stdout is not None
        # Wait until the traffic runs (the schedule is printed just before it starts).
        for line in process.stdout:
            if line.startswith("  schedule:"):
                break
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "Interrupted after" in out
    assert "\nIncidents\n" in out
    assert "Telemetry: spans and metrics:" in out
    assert f"JSON lines in {telemetry}" in out
    assert telemetry.read_text(encoding="utf-8").count("\n") > 0  # flushed before exit
