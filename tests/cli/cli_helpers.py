"""Helpers shared by the CLI tests: run the command as a subprocess, with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

# Variables that would send the demo's telemetry or events somewhere else.
_STRIP = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "SENTRY_DSN",
    "SENTRY_ENABLED",
    "OTEL_SDK_DISABLED",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _STRIP}
    env["NO_COLOR"] = "1"
    return env


def run_cli(
    args: Sequence[str], *, timeout: float = 30.0, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``otel-model-health ARGS`` in a subprocess, with a clean environment plus ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "otel_model_health.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean_env(), **(env or {})},
        check=False,
    )


def start_cli(args: Sequence[str]) -> subprocess.Popen[str]:
    """``otel-model-health ARGS`` started in a subprocess (clean environment), its output in pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "otel_model_health.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
