"""The parts of a Sentry event for an SLO burn-rate alert (``slo_alert_started``).

One Sentry issue per SLO, model and severity (the fingerprint), so a page and a ticket of the same SLO
are two issues, and each alert start is one event in its issue. Pages are ``error``, tickets ``warning``.
"""

from __future__ import annotations

from typing import Any, Final

from ..health.types import HealthTransition, SloAlert
from ..slo.status import window_label

FINGERPRINT_SLO: Final = "model-health-slo"
LEVELS: Final = {"page": "error", "ticket": "warning"}


def _alert(transition: HealthTransition) -> SloAlert:
    alert = transition.slo_alert
    assert alert is not None
    return alert


def level(transition: HealthTransition) -> str:
    return LEVELS.get(_alert(transition).severity, "warning")


def message(transition: HealthTransition) -> str:
    """E.g. ``SLO page: chat for openai/gpt-4o via direct (burn 15.6x over 1h, 186x over 5m)``."""
    a = _alert(transition)
    key = transition.key
    return (
        f"SLO {a.severity}: {a.slo} for {key.provider}/{key.model} via {key.gateway} "
        f"(burn {a.long_burn_rate:.3g}x over {window_label(a.long_window_s)}, "
        f"{a.short_burn_rate:.3g}x over {window_label(a.short_window_s)})"
    )


def fingerprint(transition: HealthTransition) -> list[str]:
    a = _alert(transition)
    key = transition.key
    return [FINGERPRINT_SLO, a.slo, key.provider, key.gateway, key.model, a.severity]


def _subject(transition: HealthTransition) -> dict[str, object]:
    """What both the tags and the context name: the model, the SLO and the state of the moment."""
    a = _alert(transition)
    key = transition.key
    return {
        "provider": key.provider,
        "gateway": key.gateway,
        "model_id": key.model,
        "transition": str(transition.kind),
        "slo": a.slo,
        "status": str(transition.after_status),
    }


def tags(transition: HealthTransition) -> dict[str, object]:
    a = _alert(transition)
    return {
        **_subject(transition),
        "slo_severity": a.severity,
        "slo_window": f"{window_label(a.long_window_s)}/{window_label(a.short_window_s)}",
        "breaker_state": str(transition.after),
    }


def context(transition: HealthTransition, trace_url: str | None) -> dict[str, Any]:
    a = _alert(transition)
    return {
        **_subject(transition),
        "sli": a.sli,
        "objective": a.objective,
        "severity": a.severity,
        "burn_rate_threshold": a.burn_rate_threshold,
        "long_window": window_label(a.long_window_s),
        "short_window": window_label(a.short_window_s),
        "long_burn_rate": a.long_burn_rate,
        "short_burn_rate": a.short_burn_rate,
        "error_budget_remaining": a.error_budget_remaining,
        "circuit_breaker_state": str(transition.after),
        # A bad call of the short window (None when none carried a span).
        "trace_sampled": transition.sampled,
        "trace_url": trace_url,
    }
