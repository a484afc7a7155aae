"""examples/slo_alerts.py runs as written and tells the story docs/slo.md tells."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "slo_alerts.py"


def test_slo_example() -> None:
    lines = runpy.run_path(str(EXAMPLE))["main"]()
    kinds = [line.split()[2:4] for line in lines[:5]]
    assert kinds == [
        ["slo_alert_started", "page"],
        ["slo_alert_started", "page"],
        ["slo_alert_started", "ticket"],
        ["slo_alert_resolved", "page"],
        ["slo_alert_resolved", "page"],
    ]
    assert lines[0].startswith("   +0.8 min")  # the 14.4x / 1 h page, within a minute of the outage
    # 60 failed calls of 260,000 in 30 days against a 0.1% budget: 23% of it spent.
    assert lines[5] == "error budget left: 76.7% of the 30 days' budget"
    assert lines[6] == "active alerts now: ticket:3d/6h"
