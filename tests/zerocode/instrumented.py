"""Running a program under ``opentelemetry-instrument``, as a user would, for the zero-code tests.

``opentelemetry-instrument`` finds our instrumentor through the ``opentelemetry_instrumentor`` entry point
of the installed distribution. A development venv installed before pyproject.toml declared it (the
editable install is refreshed by ``make test`` only when pyproject.toml changes) lacks it; then a
``.dist-info`` carrying exactly the entry point pyproject.toml declares is put on the child's path, the
only thing ``pip install`` would have added.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path

from configure.otlp_receivers import REPO, child_env

GROUP = "opentelemetry_instrumentor"
INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"


def declared_entry_points() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return dict(project["entry-points"][GROUP])


def entry_point_path(tmp: Path) -> str | None:
    """A directory to put on PYTHONPATH so the declared entry point is found; None when installed."""
    declared = declared_entry_points()
    installed = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    if all(installed.get(name) == value for name, value in declared.items()):
        return None
    info = tmp / "otel_model_health_entry_points-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: otel_model_health_entry_points\nVersion: 0\n"
    )
    lines = [f"[{GROUP}]", *(f"{name} = {value}" for name, value in declared.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return str(tmp)


def instrumented_env(tmp: Path, extra: Mapping[str, str]) -> dict[str, str]:
    env = child_env(
        {
            "OTEL_SERVICE_NAME": "zero-code-app",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            **extra,
        }
    )
    path = entry_point_path(tmp)
    if path is not None:
        env["PYTHONPATH"] = env["PYTHONPATH"] + ":" + path
    return env


def popen(args: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    """``opentelemetry-instrument python ARGS`` with stdin and stdout as pipes."""
    return subprocess.Popen(
        [str(INSTRUMENT), sys.executable, *args],
        env=env,
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(args: list[str], env: Mapping[str, str], timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INSTRUMENT), sys.executable, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
