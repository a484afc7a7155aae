"""A Grafana dashboard and Prometheus rules for the metrics this library exports (docs/dashboards.md).

They ship inside the package (the repository keeps no top-level folders beyond the package, tests,
examples and docs), so an installed library carries the files that match its metric names:
``python -m otel_model_health.dashboards DIR`` copies them out, ``path(name)`` locates one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final

GRAFANA_DASHBOARD: Final = "grafana-model-health.json"
PROMETHEUS_RULES: Final = "prometheus-model-health.rules.yml"
FILES: Final = (GRAFANA_DASHBOARD, PROMETHEUS_RULES)

# OTel unit -> Prometheus suffix (the Collector's and Prometheus's OTLP translation). Annotations in
# braces (``{call}``) add nothing; ``1`` is ``ratio`` on gauges only.
_UNIT_SUFFIXES: Final = {"s": "seconds", "ms": "milliseconds", "By": "bytes"}


def path(name: str) -> Path:
    """Where the installed file ``name`` (one of ``FILES``) is."""
    if name not in FILES:
        raise ValueError(f"unknown file {name!r}; one of {FILES}")
    return Path(str(resources.files(__package__).joinpath(name)))


def prometheus_names(name: str, kind: str, unit: str) -> tuple[str, ...]:
    """The series names an OTel instrument gets in Prometheus: dots to underscores, the unit as a suffix,
    ``_total`` on counters, ``_bucket`` / ``_sum`` / ``_count`` on histograms.

    ``kind`` as the API names it: ``counter``, ``observable_counter``, ``up_down_counter``,
    ``observable_up_down_counter``, ``gauge``, ``observable_gauge`` or ``histogram``.
    """
    base = name.replace(".", "_").replace("-", "_")
    suffix = _UNIT_SUFFIXES.get(unit)
    if unit == "1" and kind in ("gauge", "observable_gauge"):
        suffix = "ratio"
    if suffix and not base.endswith("_" + suffix):
        base += "_" + suffix
    if kind in ("counter", "observable_counter"):
        return (base + "_total",)
    if kind == "histogram":
        return (base + "_bucket", base + "_sum", base + "_count")
    return (base,)
