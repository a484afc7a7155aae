"""The registry's SLO burn rates and alert decisions against a brute-force calculator over the raw events,
on random outcome streams over a simulated 30 days (ManualClock).

Bound (docs/slo.md): a burn rate is the exact burn rate of a window whose start lies in the bucket holding
the nominal start (1 min, 1 h or 1 day depending on its age). So each alert decision the registry took at
time t must be one the exact reference takes for some window starts within one bucket of the nominal ones:
started -> both windows could burn above the threshold; resolved -> the short one could be at or below it;
active after a read -> the short window could be above; inactive after a read -> one could be at or below.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit.slo_reference import EventLog

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import HealthTransition, TransitionKind
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.slo import SLO
from otel_model_health.slo.tracker import Plan

DAY = 86400.0
KEY = ModelKey(provider="openai", model="gpt-4o")
SLO_ = SLO("chat", objective=0.99)
PLAN = Plan(SLO_)
EPS = 1e-9

bursts = st.lists(
    st.tuples(
        st.one_of(st.floats(0, 120), st.floats(0, 3 * 3600), st.floats(0, 2 * DAY)),  # quiet time before it
        st.integers(1, 60),  # calls, one every `spacing` seconds
        st.sampled_from([1.0, 5.0, 30.0]),  # spacing
        st.sampled_from([0.0, 0.005, 0.02, 0.1, 0.5, 1.0]),  # share of failures
        st.sampled_from([Outcome.SUCCESS, Outcome.RATE_LIMITED, Outcome.NEUTRAL]),  # what the others are
    ),
    min_size=1,
    max_size=50,
)


def within(log: EventLog, now: float, window: float) -> tuple[float, float]:
    return log.burn_bracket(PLAN.layout, now, window, PLAN.budget)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bursts=bursts, offset=st.floats(0, DAY))
def test_burn_rates_and_alerts_match_the_brute_force_reference(
    bursts: list[tuple[float, int, float, float, Outcome]], offset: float
) -> None:
    from otel_model_health.testing import ManualClock

    clock = ManualClock(1_000_000.0 + offset)
    registry = HealthRegistry(clock=clock, wall_clock=clock, slos=[SLO_])
    changes: list[HealthTransition] = []
    registry.subscribe(lambda t: changes.append(t) if t.slo_alert is not None else None)
    log = EventLog()
    end = clock() + 30 * DAY
    for gap, calls, spacing, failing, other in bursts:
        clock.advance(gap)
        every = round(1 / failing) if failing else 0
        for i in range(calls):
            outcome = Outcome.FAILURE if every and i % every == 0 else other
            registry.record(KEY, outcome)
            if outcome is not Outcome.RATE_LIMITED and outcome is not Outcome.NEUTRAL:
                log.add(clock(), outcome is Outcome.SUCCESS)  # rate limits and neutral are excluded
            clock.advance(spacing)
        # Transitions so far: each decision within the bound at its own time.
        for t in changes:
            alert = t.slo_alert
            assert alert is not None
            long = within(log, t.at, alert.long_window_s)
            short = within(log, t.at, alert.short_window_s)
            threshold = alert.burn_rate_threshold
            if t.kind is TransitionKind.SLO_ALERT_STARTED:
                assert long[1] > threshold - EPS and short[1] > threshold - EPS
            else:
                assert short[0] <= threshold + EPS
            assert long[0] - EPS <= alert.long_burn_rate <= long[1] + EPS
            assert short[0] - EPS <= alert.short_burn_rate <= short[1] + EPS
        changes.clear()
        # A read: burn rates per window, and the alert states it leaves.
        (status,) = registry.slo_statuses()
        now = clock()
        for window in PLAN.windows():
            low, high = within(log, now, window)
            rate = status.burn_rates[_label(window)]
            assert low - EPS <= rate <= high + EPS, (window, rate, low, high)
        for alert, long_s, short_s, threshold in PLAN.alerts:
            long, short = within(log, now, long_s), within(log, now, short_s)
            if alert.name in status.active_alerts:
                assert short[1] > threshold - EPS
            else:
                assert short[0] <= threshold + EPS or long[0] <= threshold + EPS
        changes.clear()  # the read's own transitions were checked by the state it left
        if clock() > end:
            break


def _label(seconds: float) -> str:
    from otel_model_health.slo.status import window_label

    return window_label(seconds)
