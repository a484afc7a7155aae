"""The SLO table the CLI prints under the health table: budget left and burn rates per model and SLO,
from ``GET /health/slo`` entries (``slo.status.status_json``), so `status` and `demo` print the same."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from .text import printable

COLUMNS: Final = ("SLO", "MODEL", "OBJECTIVE", "BUDGET LEFT", "BURN (window: rate)", "ALERTS")


def _rate(value: Any) -> str:
    return f"{value:.2f}x" if isinstance(value, (int, float)) else "-"


def slo_rows(entries: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for e in entries:
        burn = e.get("burn_rates") or {}
        budget = e.get("error_budget_remaining")
        objective = e.get("objective")
        rows.append(
            [
                printable(str(e.get("slo", "?")))[:32],
                printable(f"{e.get('provider')}/{e.get('model')}")[:40],
                f"{objective * 100:g}%" if isinstance(objective, (int, float)) else "-",
                f"{budget * 100:.1f}%" if isinstance(budget, (int, float)) else "-",
                " ".join(f"{printable(str(w))}: {_rate(r)}" for w, r in burn.items()),
                printable(", ".join(str(a) for a in e.get("active_alerts") or ())) or "-",
            ]
        )
    return rows


def render_slo_table(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The table as lines; no lines at all when no SLO is configured."""
    if not entries:
        return []
    rows = slo_rows(entries)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(COLUMNS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return lines
