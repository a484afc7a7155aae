"""Turning one ``HealthTransition`` into a Sentry event dict (pure functions, no sentry_sdk import).

The event is built by hand rather than through ``capture_exception``: there is no live exception (the
failure happened in some earlier call, possibly in another thread), and a hand-built dict lets us control
exactly what is sent: fingerprint, tags, contexts and the trace link.

It is a message event, with no ``exception`` entry: Sentry and Bugsink title an event by its exception's
type and value when it has one ("503: Service Unavailable" for every model and outage alike), and by its
message otherwise, so the headline (``Model unavailable: openai/gpt-4o via openrouter (breaker opened,
503)``) is what an issue list shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from ..health.types import HealthTransition, TransitionKind
from ..keys import ModelKey
from . import slo_events

# Sentry does not cut tags itself; an over-long key or value makes the server drop the tag.
MAX_TAG_KEY_LENGTH: Final = 32
MAX_TAG_VALUE_LENGTH: Final = 200

LEVELS: Final = ("warning", "error", "fatal")

# The level of each captured transition kind; kinds not listed here are never captured.
BASE_LEVELS: Final[Mapping[TransitionKind, str]] = {
    TransitionKind.FIRST_FAILURE: "warning",
    TransitionKind.BREAKER_OPENED: "error",
    TransitionKind.HALF_OPEN_FAILED: "error",
    TransitionKind.PROVIDER_OUTAGE: "fatal",
}

_HEADLINES: Final[Mapping[TransitionKind, tuple[str, str]]] = {
    TransitionKind.FIRST_FAILURE: ("Model failing", "first failure"),
    TransitionKind.BREAKER_OPENED: ("Model unavailable", "breaker opened"),
    TransitionKind.HALF_OPEN_FAILED: ("Model still unavailable", "half-open trial failed"),
}

FINGERPRINT_MODEL: Final = "model-health"
FINGERPRINT_OUTAGE: Final = "model-health-outage"
CONTEXT_NAME: Final = "model_health"
LOGGER_NAME: Final = "otel_model_health"


def escalate(level: str) -> str:
    """One level higher: warning → error → fatal; fatal stays fatal."""
    index = LEVELS.index(level) if level in LEVELS else 0
    return LEVELS[min(index + 1, len(LEVELS) - 1)]


def format_trace_id(trace_id: int) -> str:
    return f"{trace_id:032x}"


def format_span_id(span_id: int) -> str:
    return f"{span_id:016x}"


def render_trace_url(template: str, trace_id: int, span_id: int | None) -> str:
    """Fill ``{trace_id}`` (32 hex) and ``{span_id}`` (16 hex) into a trace-viewer URL template."""
    return template.format(
        trace_id=format_trace_id(trace_id),
        span_id=format_span_id(span_id) if span_id is not None else "",
    )


def cut_tags(tags: Mapping[str, object]) -> dict[str, str]:
    """Stringify tag values, drop empty ones, and cut keys and values to Sentry's limits."""
    cut: dict[str, str] = {}
    for key, value in tags.items():
        if value is None:
            continue
        text = str(value)
        if not text.isprintable():  # a newline in a tag value makes the server reject the tag
            text = "".join(ch if ch.isprintable() else " " for ch in text)
        cut[key[:MAX_TAG_KEY_LENGTH]] = text[:MAX_TAG_VALUE_LENGTH]
    return cut


def _iso(epoch_s: float | None) -> str | None:
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def _error_label(transition: HealthTransition) -> str | None:
    error = transition.error
    if error is None:
        return None
    if error.status_code is not None:
        return str(error.status_code)
    return error.error_type


def _model_label(key: ModelKey) -> str:
    return f"{key.provider}/{key.model} via {key.gateway}"


def outage_provider(transition: HealthTransition) -> str:
    return transition.provider or transition.key.provider


def build_message(transition: HealthTransition) -> str:
    """A one-line headline, e.g. ``Model unavailable: openai/gpt-4o via openrouter (breaker opened, 503)``."""
    if transition.slo_alert is not None:
        return slo_events.message(transition)
    if transition.kind is TransitionKind.PROVIDER_OUTAGE:
        count = len(transition.provider_models)
        models = f"{count} models unhealthy" if count else "all models unhealthy"
        return f"Provider outage: {outage_provider(transition)} ({models})"
    headline, what = _HEADLINES.get(transition.kind, ("Model health", str(transition.kind).replace("_", " ")))
    label = _error_label(transition)
    detail = f"{what}, {label}" if label else what
    return f"{headline}: {_model_label(transition.key)} ({detail})"


def build_fingerprint(transition: HealthTransition) -> list[str]:
    """One Sentry issue per model (its events are the incident's steps); one per provider for outages;
    one per SLO, model and severity for SLO alerts."""
    if transition.slo_alert is not None:
        return slo_events.fingerprint(transition)
    if transition.kind is TransitionKind.PROVIDER_OUTAGE:
        return [FINGERPRINT_OUTAGE, outage_provider(transition)]
    key = transition.key
    return [FINGERPRINT_MODEL, key.provider, key.gateway, key.model]


def build_tags(transition: HealthTransition) -> dict[str, str]:
    if transition.slo_alert is not None:
        return cut_tags(slo_events.tags(transition))
    if transition.kind is TransitionKind.PROVIDER_OUTAGE:
        # Provider-level only: the model that happened to complete the outage is not its subject, and
        # its tags would make ``model_id:X`` searches return the outage (the models are in the context).
        return cut_tags({"provider": outage_provider(transition), "transition": str(transition.kind)})
    key = transition.key
    error = transition.error
    return cut_tags(
        {
            "provider": key.provider,
            "gateway": key.gateway,
            "model_id": key.model,
            "operation": transition.operation,
            "transition": str(transition.kind),
            "breaker_state": str(transition.after),
            "error_type": error.error_type if error is not None else None,
            "status": str(transition.after_status),
        }
    )


def _trace_url(transition: HealthTransition, template: str | None) -> str | None:
    if template is None or transition.trace_id is None:
        return None
    return render_trace_url(template, transition.trace_id, transition.span_id)


def build_context(transition: HealthTransition, *, trace_url_template: str | None) -> dict[str, Any]:
    """The ``model_health`` context: the figures a responder needs (contexts are shown, not searched)."""
    if transition.kind is TransitionKind.PROVIDER_OUTAGE:
        return build_outage_context(transition, trace_url_template=trace_url_template)
    if transition.slo_alert is not None:
        return slo_events.context(transition, _trace_url(transition, trace_url_template))
    key = transition.key
    state = transition.state
    error = transition.error
    return {
        "model_id": key.model,
        "provider": key.provider,
        "gateway": key.gateway,
        "operation": transition.operation,
        "status": str(transition.after_status),
        "status_code": error.status_code if error is not None else None,
        "response_time_ms": (
            round(error.latency_s * 1000.0, 3) if error is not None and error.latency_s is not None else None
        ),
        "error_count": state.failures_in_window,
        "success_rate": state.success_rate,
        "circuit_breaker_state": str(transition.after),
        "error_message": error.message if error is not None else None,  # scrubbed by the registry
        "last_failure": _iso(state.last_failure_at),
        "trace_sampled": transition.sampled,
        "trace_url": _trace_url(transition, trace_url_template),
        "transition": str(transition.kind),
        "previous_breaker_state": str(transition.before),
        "consecutive_failures": state.consecutive_failures,
        "calls_in_window": state.calls_in_window,
        "open_until": _iso(state.open_until),
    }


def build_outage_context(transition: HealthTransition, *, trace_url_template: str | None) -> dict[str, Any]:
    """A provider outage: its models, and the failure of the model that completed it (``last_*``)."""
    error = transition.error
    return {
        "provider": outage_provider(transition),
        "transition": str(transition.kind),
        "provider_models": [str(model) for model in transition.provider_models],
        "models_unhealthy": len(transition.provider_models),
        "last_model": str(transition.key),
        "last_error_type": error.error_type if error is not None else None,
        "last_status_code": error.status_code if error is not None else None,
        "last_error_message": error.message if error is not None else None,
        "last_failure": _iso(transition.state.last_failure_at),
        "trace_sampled": transition.sampled,
        "trace_url": _trace_url(transition, trace_url_template),
    }


# The fields build_event sets, and what the event keeps of what sentry-sdk adds: its own metadata and the
# runtime / OS contexts.
_KEPT_FIELDS: Final = frozenset(
    {"event_id", "timestamp", "level", "logger", "message", "fingerprint", "tags", "contexts"}
    | {"platform", "sdk", "server_name", "release", "environment", "dist"}
)
_KEPT_CONTEXTS: Final = frozenset({CONTEXT_NAME, "trace", "runtime", "os"})


def keep_own_fields(event: dict[str, Any], _hint: object) -> dict[str, Any]:
    """A scope event processor for our events only: drop what sentry-sdk's integrations attach to every
    event (``sys.argv`` under ``extra``, the installed ``modules``, a ``request`` or ``user`` of whatever
    scope the event was captured from). A secret on the command line must not reach Sentry with every
    model-health event. It runs last (current-scope processors follow the global ones)."""
    kept = {key: value for key, value in event.items() if key in _KEPT_FIELDS}
    contexts = kept.get("contexts")
    if isinstance(contexts, dict):
        kept["contexts"] = {name: value for name, value in contexts.items() if name in _KEPT_CONTEXTS}
    return kept


def build_event(
    transition: HealthTransition, *, level: str, trace_url_template: str | None = None
) -> dict[str, Any]:
    """The complete event dict for ``sentry_sdk.capture_event``."""
    event: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "timestamp": datetime.fromtimestamp(transition.at, UTC),
        "level": level,
        "logger": LOGGER_NAME,
        "message": build_message(transition),
        "fingerprint": build_fingerprint(transition),
        "tags": build_tags(transition),
        "contexts": {CONTEXT_NAME: build_context(transition, trace_url_template=trace_url_template)},
    }
    if transition.trace_id is not None and transition.span_id is not None:
        # Set explicitly so the SDK does not fill in the (unrelated) trace of the capturing scope.
        event["contexts"]["trace"] = {
            "trace_id": format_trace_id(transition.trace_id),
            "span_id": format_span_id(transition.span_id),
        }
    return event
