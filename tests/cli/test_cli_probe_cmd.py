"""`otel-model-health probe` as a subprocess against the simulated provider: exit codes 0 / 1 / 2."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli_helpers import run_cli

from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration  # a subprocess against the simulated provider


@pytest.fixture(scope="module")
def provider() -> Iterator[SimulatedProvider]:
    with SimulatedProvider() as sim:
        sim.script("broken-model", Fault.status(503))
        sim.script("claude-broken", Fault.overloaded())
        yield sim


def test_healthy_model_exits_0(provider: SimulatedProvider) -> None:
    result = run_cli(["probe", "--base-url", provider.openai_base_url, "--model", "gpt-4o", "--once"])
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("gpt-4o"))
    assert row.split()[:4] == ["gpt-4o", "openai", "self_hosted", "healthy"]
    assert "1 of 1 models healthy" in result.stdout
    assert "\x1b[" not in result.stdout


def test_a_model_scripted_to_503_exits_1(provider: SimulatedProvider) -> None:
    result = run_cli(
        [
            "probe",
            "--base-url",
            provider.openai_base_url,
            "--model",
            "gpt-4o",
            "--model",
            "broken-model",
            "--provider",
            "openai",
            "--gateway",
            "direct",
            "--once",
        ]
    )
    assert result.returncode == 1, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("broken-model"))
    assert row.split()[:4] == ["broken-model", "openai", "direct", "degraded"]
    assert "503" in row
    assert "1 of 2 models healthy" in result.stdout


def test_anthropic_endpoint(provider: SimulatedProvider) -> None:
    ok = run_cli(
        [
            "probe",
            "--base-url",
            provider.anthropic_base_url,
            "--provider",
            "anthropic",
            "--model",
            "claude-haiku-4-5",
            "--once",
        ]
    )
    assert ok.returncode == 0, ok.stderr
    broken = run_cli(
        [
            "probe",
            "--base-url",
            provider.anthropic_base_url,
            "--provider",
            "anthropic",
            "--model",
            "claude-broken",
            "--once",
        ]
    )
    assert broken.returncode == 1
    assert "529" in broken.stdout
    paths = {r.path for r in provider.requests_for("claude-haiku-4-5")}
    assert paths == {"/v1/messages"}


def test_continuous_mode_stops_after_duration(provider: SimulatedProvider) -> None:
    result = run_cli(
        [
            "probe",
            "--base-url",
            provider.openai_base_url,
            "--model",
            "gpt-4o-mini",
            "--interval",
            "0.5",
            "--duration",
            "1.5",
        ]
    )
    assert result.returncode == 0, result.stderr
    assert "gpt-4o-mini" in result.stdout  # the final table
    assert len(provider.requests_for("gpt-4o-mini")) >= 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base-url", "not-a-url", "--model", "m", "--once"], "--base-url must be an http(s) URL"),
        (["--base-url", "http://127.0.0.1:99999/v1", "--model", "m", "--once"], "is not a valid URL"),
        (["--base-url", "ftp://example.com", "--model", "m", "--once"], "--base-url must be an http(s) URL"),
        (["--base-url", "http://127.0.0.1/v1", "--model", " ", "--once"], "--model must not be empty"),
        (
            ["--base-url", "http://127.0.0.1/v1", "--model", "m", "--once", "--duration", "3"],
            "exclude each other",
        ),
        (["--base-url", "http://127.0.0.1/v1", "--once"], "--model"),  # argparse: required
        (["--base-url", "http://127.0.0.1/v1", "--model", "m", "--interval", "0"], "--interval"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run_cli(["probe", *args])
    assert result.returncode == 2
    assert message in result.stderr
