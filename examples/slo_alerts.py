"""SLO burn-rate alerts on a simulated month, in seconds: a clock moved by hand stands in for real time.

Thirty clean days at a call every 10 s, then the provider fails every call for ten minutes. The SLO
(99.9% over 30 days, the Workbook's alerts) pages within a minute, the pages resolve once calls succeed
again, and the budget left shows what the outage cost: 10 of the 43 minutes a month may fail. See
docs/slo.md.

Run: .venv/bin/python examples/slo_alerts.py
"""

from __future__ import annotations

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import HealthTransition
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.slo import SLO
from otel_model_health.testing import ManualClock

KEY = ModelKey(provider="openai", model="gpt-4o")
START = 1_800_000_000.0


def main() -> list[str]:
    clock = ManualClock(START)
    registry = HealthRegistry(clock=clock, wall_clock=clock, slos=[SLO("chat", objective=0.999)])
    lines: list[str] = []

    def on_transition(t: HealthTransition) -> None:
        if t.slo_alert is not None:
            a = t.slo_alert
            minutes = (t.at - START) / 60 - 30 * 1440  # since the outage began
            lines.append(
                f"{minutes:+7.1f} min  {t.kind.value:<19} {a.severity:<6} burn {a.long_burn_rate:7.1f}x over "
                f"{a.long_window_s / 3600:g} h, {a.short_burn_rate:7.1f}x over {a.short_window_s / 60:g} min"
            )

    registry.subscribe(on_transition)

    def calls(n: int, every_s: float, outcome: Outcome) -> None:
        for _ in range(n):
            registry.record(KEY, outcome, latency_s=0.8)
            clock.advance(every_s)

    calls(30 * 8640, 10.0, Outcome.SUCCESS)  # thirty clean days
    calls(60, 10.0, Outcome.FAILURE)  # a 10-minute outage
    calls(720, 10.0, Outcome.SUCCESS)  # two clean hours
    (status,) = registry.slo_statuses()
    lines.append(f"error budget left: {status.error_budget_remaining:.1%} of the 30 days' budget")
    lines.append(f"active alerts now: {', '.join(status.active_alerts) or 'none'}")
    return lines


if __name__ == "__main__":
    for line in main():
        print(line)
