"""A read of one (model, SLO) series: what /health/slo, the metrics and the CLI show."""

from __future__ import annotations

from dataclasses import dataclass

from ..keys import ModelKey
from .tracker import Series


@dataclass(frozen=True, slots=True)
class SloStatus:
    slo: str
    sli: str
    objective: float
    key: ModelKey
    period_s: float
    burn_rates: dict[str, float]  # window label ("5m", "1h", "3d", "30d" ...) -> burn rate
    error_budget_remaining: float  # ratio of the period's budget; negative when overspent
    good: float  # events in the period (the oldest bucket pro rata)
    bad: float
    active_alerts: tuple[str, ...]  # names of the active alerts, e.g. "page:1h/5m"
    active_severities: tuple[str, ...]
    as_of: float  # epoch seconds

    @property
    def worst_severity(self) -> str | None:
        if "page" in self.active_severities:
            return "page"
        return "ticket" if self.active_severities else None


def window_label(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def series_status(series: Series, now: float, wall_now: float) -> SloStatus:
    plan = series.plan
    slo = plan.slo
    period = slo.period_s
    good, bad = series.history.window(now, period)
    rates = {window_label(w): series.burn_rate(now, w) for w in plan.windows()}
    active = [alert for (alert, *_), on in zip(plan.alerts, series.active, strict=True) if on]
    return SloStatus(
        slo=slo.name,
        sli=slo.sli,
        objective=slo.objective,
        key=series.key,
        period_s=period,
        burn_rates=rates,
        error_budget_remaining=1.0 - rates[window_label(period)],
        good=good,
        bad=bad,
        active_alerts=tuple(a.name for a in active),
        active_severities=tuple(sorted({a.severity for a in active})),
        as_of=wall_now,
    )


def status_json(status: SloStatus) -> dict[str, object]:
    """One entry of ``GET /health/slo`` (docs/slo.md)."""
    return {
        "slo": status.slo,
        "sli": status.sli,
        "objective": status.objective,
        "provider": status.key.provider,
        "model": status.key.model,
        "gateway": status.key.gateway,
        "period": window_label(status.period_s),
        "burn_rates": status.burn_rates,
        "error_budget_remaining": status.error_budget_remaining,
        "good_events": round(status.good, 3),
        "bad_events": round(status.bad, 3),
        "active_alerts": list(status.active_alerts),
    }
