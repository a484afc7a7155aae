"""A ``Step`` a model's state machine took, as the ``HealthTransition`` listeners receive."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from opentelemetry.trace import SpanContext

from ..keys import ModelKey
from .model_state import ModelState, Step
from .types import HealthTransition, SloAlert, TransitionKind

if TYPE_CHECKING:
    from ..slo.tracker import AlertChange


def transition(
    state: ModelState,
    step: Step,
    now: float,
    wall: Callable[[float], float],
    span_context: SpanContext | None,
    operation: str,
    *,
    provider: str | None = None,
    provider_models: tuple[ModelKey, ...] = (),
) -> HealthTransition:
    """With the model's snapshot of this moment and the causing span (when valid), in wall-clock time."""
    snapshot = state.snapshot(now, wall)
    trace_id = span_id = sampled = None
    if span_context is not None and span_context.is_valid:
        trace_id = span_context.trace_id
        span_id = span_context.span_id
        sampled = span_context.trace_flags.sampled
    return HealthTransition(
        kind=step.kind,
        key=state.key,
        before=step.before,
        after=step.after,
        before_status=step.before_status,
        after_status=snapshot.status,
        state=snapshot,
        operation=operation,
        error=snapshot.last_error,
        at=wall(now if step.at is None else step.at),
        trace_id=trace_id,
        span_id=span_id,
        sampled=sampled,
        time_to_recover_s=step.time_to_recover_s,
        failed_calls_in_incident=step.failed_calls_in_incident,
        provider=provider,
        provider_models=provider_models,
    )


def slo_transition(
    state: ModelState, change: AlertChange, now: float, wall: Callable[[float], float]
) -> HealthTransition:
    """``slo_alert_started`` / ``slo_alert_resolved``: the breaker and status do not change."""
    plan = change.series.plan
    alert = change.alert
    kind = TransitionKind.SLO_ALERT_STARTED if change.started else TransitionKind.SLO_ALERT_RESOLVED
    breaker_state = state.breaker.state
    step = Step(kind, breaker_state, breaker_state, state.status(now))
    base = transition(state, step, now, wall, change.span_context, plan.operation)
    info = SloAlert(
        slo=plan.slo.name,
        sli=plan.slo.sli,
        objective=plan.slo.objective,
        severity=alert.severity,
        burn_rate_threshold=alert.burn_rate,
        long_window_s=alert.long_window_s,
        short_window_s=alert.short_window_s,
        long_burn_rate=change.long_burn_rate,
        short_burn_rate=change.short_burn_rate,
        error_budget_remaining=change.error_budget_remaining,
    )
    return replace(base, slo_alert=info)
