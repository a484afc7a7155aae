"""The health table every command prints: one row per model, from a registry snapshot or /health JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..health.types import ModelHealthState
from .text import printable

COLUMNS: Final = ("MODEL", "PROVIDER", "GATEWAY", "STATUS", "SUCCESS", "BREAKER", "P50", "P95", "LAST ERROR")
_MAX_MODEL: Final = 36
_MAX_CELL: Final = 40

# ANSI colours per status (TTY only).
_COLOURS: Final = {
    "healthy": "\x1b[32m",
    "degraded": "\x1b[33m",
    "unhealthy": "\x1b[31;1m",
    "stale": "\x1b[90m",
    "unknown": "\x1b[90m",
}
_RESET: Final = "\x1b[0m"


@dataclass(frozen=True, slots=True)
class Row:
    model: str
    provider: str
    gateway: str
    status: str
    success_rate: float | None
    calls_in_window: int
    breaker: str
    p50_s: float | None
    p95_s: float | None
    last_error: str | None

    @property
    def healthy(self) -> bool:
        return self.status == "healthy"


def row_from_state(state: ModelHealthState) -> Row:
    error = state.last_error
    last_error = None
    if error is not None:
        last_error = error.error_type or (str(error.status_code) if error.status_code else "error")
        if error.message:
            last_error = f"{last_error}: {error.message}"
    return Row(
        model=state.key.model,
        provider=state.key.provider,
        gateway=state.key.gateway,
        status=state.status.value,
        success_rate=state.success_rate,
        calls_in_window=state.calls_in_window,
        breaker=state.breaker_state.value,
        p50_s=state.latency_p50_s,
        p95_s=state.latency_p95_s,
        last_error=last_error,
    )


def format_rate(rate: float | None, calls: int) -> str:
    if rate is None:
        return "-"
    return f"{rate * 100:.0f}% of {calls}"


def format_latency(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    return f"{seconds:.2f}s"


def _cut(text: str, width: int = _MAX_CELL) -> str:
    """One line without control characters (names may come from a remote /health), at most ``width``."""
    text = printable(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(rows: Sequence[Row], *, colour: bool = False) -> list[str]:
    """The table as lines (no trailing newline). Columns are sized to their content."""
    cells = [
        [
            _cut(r.model, _MAX_MODEL),
            _cut(r.provider),
            _cut(r.gateway),
            _cut(r.status),
            format_rate(r.success_rate, r.calls_in_window),
            _cut(r.breaker),
            format_latency(r.p50_s),
            format_latency(r.p95_s),
            _cut(r.last_error) if r.last_error else "-",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(COLUMNS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    for row, cell in zip(rows, cells, strict=True):
        parts = []
        for i, (text, width) in enumerate(zip(cell, widths, strict=True)):
            padded = text.ljust(width)
            if colour and i == 3:
                padded = f"{_COLOURS.get(row.status, '')}{padded}{_RESET}"
            parts.append(padded)
        lines.append("  ".join(parts).rstrip())
    if not rows:
        lines.append("(no models yet)")
    return lines


def overall_line(summary: Mapping[str, Any]) -> str:
    """``overall: degraded — 5 models: 3 healthy, 1 degraded, 1 unhealthy; provider outage: anthropic``."""
    models = summary.get("models") or {}
    counts = ", ".join(
        f"{models[name]} {name}"
        for name in ("healthy", "degraded", "unhealthy", "stale", "unknown")
        if models.get(name)
    )
    total = models.get("total", 0)
    line = f"overall: {_cut(summary.get('status', 'unknown'))} — {total} model{'' if total == 1 else 's'}"
    if counts:
        line += f": {counts}"
    providers = summary.get("providers") or {}
    outages = sorted(name for name, p in providers.items() if (p or {}).get("status") == "unhealthy")
    if outages:
        line += f"; provider outage: {', '.join(_cut(name) for name in outages)}"
    return line
