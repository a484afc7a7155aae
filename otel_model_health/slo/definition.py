"""SLO definitions: what counts as a good and a bad event, for which models, and when to alert.

An SLO is checked once per model key, when the key is first recorded (``matches_key``); the operation
glob is checked per call (it is a property of the call, not of the key). See docs/slo.md.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Final, Literal

from ..keys import ModelKey

Severity = Literal["page", "ticket"]
Sli = Literal["availability", "latency"]

_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
MATCH_FIELDS: Final = ("provider", "model", "gateway", "operation")


def parse_duration(value: str | float | int, what: str) -> float:
    """``"30d"``, ``"6h"``, ``"5m"``, ``"90s"`` or a number of seconds, > 0."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a duration, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        found = _DURATION.match(str(value))
        if found is None:
            raise ValueError(f"{what} must be a duration like '30d', '6h', '5m' or seconds, got {value!r}")
        seconds = float(found.group(1)) * _UNITS[found.group(2) or "s"]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{what} must be > 0, got {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class BurnRateAlert:
    """Alert when both windows burn the error budget faster than ``burn_rate`` times the sustainable
    rate; resolved when the short window no longer does."""

    severity: Severity
    burn_rate: float
    long_window: str | float
    short_window: str | float

    def __post_init__(self) -> None:
        if self.severity not in ("page", "ticket"):
            raise ValueError(f"alert severity must be 'page' or 'ticket', got {self.severity!r}")
        if not (isinstance(self.burn_rate, (int, float)) and self.burn_rate > 0):
            raise ValueError(f"alert burn_rate must be > 0, got {self.burn_rate!r}")
        if self.short_window_s > self.long_window_s:
            raise ValueError("an alert's short window cannot be longer than its long window")

    @property
    def long_window_s(self) -> float:
        return parse_duration(self.long_window, "long_window")

    @property
    def short_window_s(self) -> float:
        return parse_duration(self.short_window, "short_window")

    @property
    def name(self) -> str:
        return f"{self.severity}:{_label(self.long_window_s)}/{_label(self.short_window_s)}"


# The Site Reliability Workbook's multi-window, multi-burn-rate alerts for a 30-day budget.
DEFAULT_ALERTS: Final = (
    BurnRateAlert("page", 14.4, "1h", "5m"),  # 2% of the budget in an hour
    BurnRateAlert("page", 6.0, "6h", "30m"),  # 5% in six hours
    BurnRateAlert("ticket", 1.0, "3d", "6h"),  # 10% in three days
)


@dataclass(frozen=True, slots=True)
class SLO:
    """One objective for the models it matches. ``match`` takes globs for provider, model, gateway and
    operation (default: every model, operation ``inference``: probes are not users' calls)."""

    name: str
    objective: float = 0.99
    period: str | float = "30d"
    match: Mapping[str, str] = field(default_factory=dict)
    sli: Sli = "availability"
    # latency: a good event is a success faster than this (a stream: whose first chunk came within
    # ``first_chunk_threshold_s`` when that is set, else the whole call within ``latency_threshold_s``)
    latency_threshold_s: float | None = None
    first_chunk_threshold_s: float | None = None
    # Rate limits and neutral outcomes (cancellations, content filters) are excluded by default:
    # they say little about whether the model keeps its promise (docs/slo.md); each can count as bad.
    rate_limited_is_bad: bool = False
    neutral_is_bad: bool = False
    alerts: tuple[BurnRateAlert, ...] = DEFAULT_ALERTS

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"SLO name must be a non-empty string, got {self.name!r}")
        if not (isinstance(self.objective, (int, float)) and 0 < self.objective < 1):
            raise ValueError(f"SLO {self.name}: objective must be in (0, 1), got {self.objective!r}")
        parse_duration(self.period, f"SLO {self.name}: period")
        unknown = set(self.match) - set(MATCH_FIELDS)
        if unknown:
            raise ValueError(f"SLO {self.name}: match takes {', '.join(MATCH_FIELDS)}, not {sorted(unknown)}")
        if self.sli not in ("availability", "latency"):
            raise ValueError(f"SLO {self.name}: sli must be 'availability' or 'latency', got {self.sli!r}")
        if (
            self.sli == "latency"
            and self.latency_threshold_s is None
            and self.first_chunk_threshold_s is None
        ):
            raise ValueError(f"SLO {self.name}: a latency SLO needs latency_threshold_s")
        for alert in self.alerts:
            if not isinstance(alert, BurnRateAlert):
                raise ValueError(f"SLO {self.name}: alerts must be BurnRateAlert values, got {alert!r}")
        if not self.alerts:
            raise ValueError(f"SLO {self.name}: needs at least one alert")

    @property
    def period_s(self) -> float:
        return parse_duration(self.period, "period")

    @property
    def operation(self) -> str:
        return self.match.get("operation", "inference")

    def matches_key(self, key: ModelKey) -> bool:
        m = self.match
        return (
            fnmatchcase(key.provider, m.get("provider", "*"))
            and fnmatchcase(key.model, m.get("model", "*"))
            and fnmatchcase(key.gateway, m.get("gateway", "*"))
        )


def _label(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def slo_from_mapping(data: Mapping[str, Any]) -> SLO:
    """An ``SLO`` from a mapping (a TOML table, a JSON object): the field names of ``SLO``."""
    known = {f.name for f in fields(SLO)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"SLO {data.get('name')!r}: unknown fields {sorted(unknown)}")
    values = dict(data)
    if "alerts" in values:
        values["alerts"] = tuple(
            a if isinstance(a, BurnRateAlert) else BurnRateAlert(**a) for a in values["alerts"]
        )
    if "match" in values:
        values["match"] = dict(values["match"])
    return SLO(**values)


def coerce_slos(values: Iterable[SLO | Mapping[str, Any]]) -> tuple[SLO, ...]:
    slos = tuple(v if isinstance(v, SLO) else slo_from_mapping(v) for v in values)
    names = [s.name for s in slos]
    if len(set(names)) != len(names):
        raise ValueError(f"SLO names must be unique, got {names}")
    return slos


def load_slos(path: str | Path) -> tuple[SLO, ...]:
    """SLOs from a TOML file (``[[slo]]`` tables) or a JSON file (``{"slo": [...]}`` or a list)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    if isinstance(data, Mapping):
        data = data.get("slo", [])
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of SLOs (TOML [[slo]] tables or a JSON list)")
    return coerce_slos(data)
