"""Detection times of the default (Workbook) alerts on simulated traffic, with ManualClock: the times are
simulated seconds and asserted exactly; each comment derives it from the burn-rate formula."""

from __future__ import annotations

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import HealthTransition, TransitionKind
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.slo import SLO
from otel_model_health.testing import ManualClock

KEY = ModelKey(provider="openai", model="gpt-4o")
HOUR = 3600.0
DAY = 86400.0
START = 1_000_000 * 60.0  # on a minute edge, so the outage starts at a bucket boundary


class Run:
    def __init__(self, *slos: SLO) -> None:
        self.clock = ManualClock(START)
        self.registry = HealthRegistry(clock=self.clock, wall_clock=self.clock, slos=slos)
        self.alerts: list[HealthTransition] = []
        self.registry.subscribe(self._on)

    def _on(self, t: HealthTransition) -> None:
        if t.slo_alert is not None:
            self.alerts.append(t)

    def traffic(self, seconds: float, *, bad_every: int = 0, latency_s: float = 0.5) -> None:
        """One call per second; every ``bad_every``-th fails (0: none)."""
        for i in range(int(seconds)):
            bad = bad_every and i % bad_every == bad_every - 1
            self.registry.record(KEY, Outcome.FAILURE if bad else Outcome.SUCCESS, latency_s=latency_s)
            self.clock.advance(1.0)

    def started(self, severity: str) -> list[float]:
        return [
            t.at - START
            for t in self.alerts
            if t.kind is TransitionKind.SLO_ALERT_STARTED and t.slo_alert and t.slo_alert.severity == severity
        ]


def test_full_outage_pages_within_two_minutes() -> None:
    run = Run(SLO("chat", objective=0.999))
    run.traffic(3 * DAY)  # three clean days: every window starts full
    run.traffic(5 * 60, bad_every=1)  # a 100% outage at 1 call/s
    pages = [t - 3 * DAY for t in run.started("page")]
    # 1 h window after x s of outage: burn = (x / 3600) / 0.001 > 14.4 once x > 51.84 s, i.e. at the 53rd
    # failure (x = 52); evaluated on failures at most every 5 s: the failures at 2 h + 0, 5, ... 50, 55 s.
    # The 6 h / 30 min page follows: (x / 21600) / 0.001 > 6 after 129.6 s, evaluated at 130 s.
    assert pages == [55.0, 130.0]
    print(f"outage paged {pages[0]:.0f} s after it began")
    first = run.alerts[0]
    assert first.kind is TransitionKind.SLO_ALERT_STARTED
    assert first.slo_alert is not None and first.slo_alert.long_window_s == HOUR
    assert first.trace_id is None  # record() without a span: nothing to link


def test_two_percent_errors_ticket_after_36_hours_and_never_page() -> None:
    run = Run(SLO("chat", objective=0.99))
    run.traffic(3 * DAY)  # three clean days, so the 3-day window starts full
    run.traffic(2 * DAY, bad_every=50)  # then 2% errors: a burn rate of 2
    assert run.started("page") == []
    tickets = run.started("ticket")
    # The 6 h window exceeds 1x after 3 h; the 3 d window [t - 72 h, t] holds 259,201 calls, so it needs
    # 2,593 failures (> 1% of them): the 2,593rd is the call at x = 2593 * 50 - 1 = 129,649 s = 36 h 49 s.
    assert tickets[0] - 3 * DAY == 36 * HOUR + 49.0
    print(f"2% errors opened a ticket {(tickets[0] - 3 * DAY) / HOUR:.3f} h after they began")
