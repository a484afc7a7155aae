"""Usage errors of `demo` exit 2 with a message that names the problem, before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run_cli

pytestmark = pytest.mark.integration  # runs a subprocess


def test_missing_scenario_file(tmp_path: Path) -> None:
    result = run_cli(["demo", "--scenario", str(tmp_path / "nope.json")])
    assert result.returncode == 2
    assert "cannot read scenario file" in result.stderr


def test_invalid_scenario_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "models": [{"provider": "openai", "model": "m"}],
                "phases": [{"at": 1, "model": "m", "state": "exploding"}],
            }
        )
    )
    result = run_cli(["demo", "--scenario", str(path)])
    assert result.returncode == 2
    assert "phases[0].state must be one of" in result.stderr


def test_bad_duration_is_an_argparse_error() -> None:
    result = run_cli(["demo", "--duration", "0"])
    assert result.returncode == 2
    assert "--duration" in result.stderr


def test_no_command_is_a_usage_error() -> None:
    result = run_cli([])
    assert result.returncode == 2
    assert "COMMAND" in result.stderr
