"""A ``Step`` a model's state machine took, as the ``HealthTransition`` listeners receive."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.trace import SpanContext

from ..keys import ModelKey
from .model_state import ModelState, Step
from .types import HealthTransition


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
