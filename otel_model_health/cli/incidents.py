"""Transitions as they happen (one line each) and, at the end, the incidents they add up to.

An incident of a model runs from its first failure (or its breaker opening) to ``recovered``; its steps
are the transitions in between. With the scenario's fault windows the summary also tells the time to
detect (fault start → breaker opened) and the time to recover (fault end → breaker closed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..health.types import HealthTransition, TransitionKind
from ..keys import ModelKey

_LABELS = {
    TransitionKind.FIRST_FAILURE: "first failure",
    TransitionKind.BREAKER_OPENED: "BREAKER OPENED",
    TransitionKind.HALF_OPEN: "half-open",
    TransitionKind.HALF_OPEN_FAILED: "trial failed",
    TransitionKind.RECOVERED: "RECOVERED",
    TransitionKind.PROVIDER_OUTAGE: "PROVIDER OUTAGE",
    TransitionKind.PROVIDER_RECOVERED: "provider recovered",
    TransitionKind.SLOW_CALLS: "slow calls",
    TransitionKind.SLOW_CALLS_CLEARED: "slow calls over",
    TransitionKind.SLO_ALERT_STARTED: "SLO ALERT",
    TransitionKind.SLO_ALERT_RESOLVED: "SLO alert over",
}
# Logged as they happen, but not steps of an incident: an SLO alert spans incidents (a budget burns over
# days), and slow calls are a status, not a failure.
_NOT_INCIDENT_STEPS = frozenset(
    {
        TransitionKind.SLOW_CALLS,
        TransitionKind.SLOW_CALLS_CLEARED,
        TransitionKind.SLO_ALERT_STARTED,
        TransitionKind.SLO_ALERT_RESOLVED,
    }
)


def model_label(key: ModelKey) -> str:
    return f"{key.provider}/{key.model} via {key.gateway}"


def _error_text(transition: HealthTransition) -> str:
    error = transition.error
    if error is None:
        return ""
    kind = error.error_type or (str(error.status_code) if error.status_code else "error")
    return f"error {kind}"


def describe(transition: HealthTransition) -> str:
    """What happened, in words, without the time or the model."""
    kind = transition.kind
    state = transition.state
    if kind is TransitionKind.FIRST_FAILURE:
        rate = "" if state.success_rate is None else f", success rate {state.success_rate:.0%}"
        return f"{_error_text(transition)} → status {transition.after_status.value}{rate}"
    if kind is TransitionKind.BREAKER_OPENED:
        why = (
            f"{state.failures_in_window} of {state.calls_in_window} calls in the window failed, "
            f"{state.consecutive_failures} in a row"
        )
        return f"{_error_text(transition)}; {why} → status unhealthy"
    if kind is TransitionKind.HALF_OPEN:
        return "OPEN wait over: the next calls are trials"
    if kind is TransitionKind.HALF_OPEN_FAILED:
        return f"{_error_text(transition)} → OPEN again (backoff)"
    if kind is TransitionKind.RECOVERED:
        extra = []
        if transition.time_to_recover_s is not None:
            extra.append(f"incident lasted {transition.time_to_recover_s:.1f} s")
        if transition.failed_calls_in_incident:
            extra.append(f"{transition.failed_calls_in_incident} failed calls")
        return f"breaker {transition.after.value}, status {transition.after_status.value}" + (
            f" ({', '.join(extra)})" if extra else ""
        )
    if kind is TransitionKind.PROVIDER_OUTAGE:
        models = ", ".join(k.model for k in transition.provider_models)
        return f"every model unhealthy: {models}"
    alert = transition.slo_alert
    if alert is not None:
        rates = f"burn {alert.long_burn_rate:.1f}x / {alert.short_burn_rate:.1f}x"
        windows = f"{alert.long_window_s:g} s / {alert.short_window_s:g} s"
        budget = f"budget left {alert.error_budget_remaining:.0%}"
        threshold = f"threshold {alert.burn_rate_threshold:g}x"
        return f"{alert.severity} {alert.slo}: {rates} over {windows} ({threshold}), {budget}"
    if kind in (TransitionKind.SLOW_CALLS, TransitionKind.SLOW_CALLS_CLEARED):
        slow = f"{state.slow_calls_in_window} of {state.calls_in_window} calls in the window slow"
        return f"{slow} → status {transition.after_status.value}"
    # PROVIDER_RECOVERED
    return f"{transition.key.model} is healthy again"


@dataclass
class Incident:
    """One model's incident (``key``) or one provider's outage (``provider``)."""

    label: str
    key: ModelKey | None
    provider: str | None
    started_at: float  # seconds since the demo began
    steps: list[tuple[float, str, str]] = field(default_factory=list)  # (t, label, detail)
    opened_at: float | None = None
    recovered_at: float | None = None
    failed_calls: int | None = None
    error_types: set[str] = field(default_factory=set)


class IncidentLog:
    """A registry listener: logs a line per transition and builds the incidents. Thread-safe."""

    def __init__(self, *, t0_wall: float, emit: Callable[[str], None]) -> None:
        self._t0 = t0_wall
        self._emit = emit
        self._lock = threading.Lock()
        self._open: dict[ModelKey | str, Incident] = {}
        self.incidents: list[Incident] = []
        self.transitions = 0

    def relative(self, epoch_s: float) -> float:
        return epoch_s - self._t0

    def __call__(self, transition: HealthTransition, /) -> None:
        kind = transition.kind
        t = self.relative(transition.at)
        outage = kind in (TransitionKind.PROVIDER_OUTAGE, TransitionKind.PROVIDER_RECOVERED)
        provider = transition.provider or transition.key.provider
        who = f"provider {provider}" if outage else model_label(transition.key)
        label = _LABELS.get(kind, kind.value)
        detail = describe(transition)
        self._emit(f"t+{t:5.1f}s  {who:<52} {label:<18} {detail}")
        if kind in _NOT_INCIDENT_STEPS:
            return
        with self._lock:
            self.transitions += 1
            slot: ModelKey | str = f"provider:{provider}" if outage else transition.key
            incident = self._open.get(slot)
            if incident is None:
                if kind in (TransitionKind.RECOVERED, TransitionKind.PROVIDER_RECOVERED):
                    return  # a recovery without a known start (listener attached late)
                incident = Incident(
                    label=who,
                    key=None if outage else transition.key,
                    provider=provider if outage else None,
                    started_at=t,
                )
                self._open[slot] = incident
                self.incidents.append(incident)
            incident.steps.append((t, label, detail))
            error = transition.error
            if error is not None and kind in (
                TransitionKind.FIRST_FAILURE,
                TransitionKind.BREAKER_OPENED,
                TransitionKind.HALF_OPEN_FAILED,
            ):
                incident.error_types.add(error.error_type or str(error.status_code))
            if kind in (TransitionKind.BREAKER_OPENED, TransitionKind.PROVIDER_OUTAGE):
                if incident.opened_at is None:
                    incident.opened_at = t
            elif kind in (TransitionKind.RECOVERED, TransitionKind.PROVIDER_RECOVERED):
                incident.recovered_at = t
                incident.failed_calls = transition.failed_calls_in_incident
                del self._open[slot]


def summarize(
    incidents: Sequence[Incident],
    fault_windows: Callable[[ModelKey], list[tuple[float, float]]] | None,
) -> list[str]:
    """The incident report as lines."""
    if not incidents:
        return ["No incidents: every model stayed healthy."]
    lines: list[str] = []
    for incident in incidents:
        errors = f" — errors: {', '.join(sorted(incident.error_types))}" if incident.error_types else ""
        lines.append(f"{incident.label}{errors}")
        first = incident.steps[0][0] if incident.steps else incident.started_at
        window = None
        if incident.key is not None and fault_windows is not None:
            # The scripted fault this incident belongs to: the one running (or just ended) at its start.
            for start, end in fault_windows(incident.key):
                if start - 0.5 <= first <= end + 1.0:
                    window = (start, end)
                    break
        if window is not None:
            lines.append(f"    scenario fault: t+{window[0]:.1f}s → t+{window[1]:.1f}s")
        for t, label, detail in incident.steps:
            lines.append(f"    t+{t:5.1f}s  {label:<18} {detail}")
        lines.extend(_figures(incident, window))
    return lines


def _figures(incident: Incident, window: tuple[float, float] | None) -> list[str]:
    lines = []
    opened = incident.opened_at
    recovered = incident.recovered_at
    first = incident.steps[0][0] if incident.steps else incident.started_at
    what = "provider outage" if incident.provider is not None else "breaker opened"
    if opened is None:
        lines.append(
            f"    breaker never opened (failures stayed below the threshold); first failure t+{first:.1f}s"
        )
    elif window is not None:
        lines.append(f"    time to detect:  {opened - window[0]:.1f} s (fault start → {what})")
    else:
        lines.append(f"    {what} at t+{opened:.1f}s")
    if recovered is None:
        lines.append("    not recovered before the demo ended")
    elif window is not None and opened is not None:
        lines.append(f"    time to recover: {recovered - window[1]:.1f} s (fault end → breaker closed)")
    elif window is not None:
        lines.append(
            f"    recovered {recovered - window[1]:.1f} s after the fault ended (window free of failures)"
        )
    else:
        lines.append(f"    recovered at t+{recovered:.1f}s")
    return lines
