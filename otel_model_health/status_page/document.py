"""The status page's JSON document (version 1, docs/health-endpoint.md#the-status-page).

Built from one read of the registry (``HealthRegistry.recent()``: each model's snapshot, its last hour
per minute and its incident timeline), plus the /health summary of the same snapshots, the SLO reads
when the registry has SLOs, and, when given, the Sentry event ids of the incidents. Every text is
data for the page to set with ``textContent``; messages are the registry's scrubbed ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

from ..health.recent import BUCKET_S, Recent, TimelineEntry
from ..health.types import ModelHealthState, TransitionKind
from ..health_document import health_document, iso, model_detail
from ..keys import ModelKey
from ..sentry.events import format_trace_id, render_trace_url

VERSION: Final = 1


class SentryEvents(Protocol):
    """Where the page finds the Sentry event sent for an incident step (``SentryBridge`` is one)."""

    def event_id(self, key: ModelKey, kind: TransitionKind, at: float) -> str | None: ...


class _Snapshots:
    """The summary's source: the snapshots already read, the registry for the rest."""

    def __init__(self, registry: Any, states: list[ModelHealthState]) -> None:
        self._registry = registry
        self._states = states

    def snapshot(self) -> list[ModelHealthState]:
        return self._states

    def provider_outages(self) -> set[str]:
        found: set[str] = self._registry.provider_outages()
        return found

    def wall_time(self) -> float:
        now: float = self._registry.wall_time()
        return now


def status_document(
    registry: Any,
    *,
    trace_url_template: str | None = None,
    sentry: SentryEvents | None = None,
    sentry_url_template: str | None = None,
) -> dict[str, Any]:
    """The page's document for ``registry`` (a ``HealthRegistry``)."""
    pairs: list[tuple[ModelHealthState, Recent]] = registry.recent()
    summary = health_document(_Snapshots(registry, [state for state, _ in pairs]))
    slos = _slos_by_key(registry)

    def incident(key: ModelKey, entry: TimelineEntry) -> dict[str, Any]:
        trace_id = entry.trace_id
        event_id = None if sentry is None else sentry.event_id(key, entry.kind, entry.at)
        return {
            "kind": entry.kind.value,
            "at": iso(entry.at),
            "error_type": entry.error_type,
            "trace_id": None if trace_id is None else format_trace_id(trace_id),
            "trace_url": (
                render_trace_url(trace_url_template, trace_id, entry.span_id)
                if trace_url_template and trace_id is not None
                else None
            ),
            "sentry_event_id": event_id,
            "sentry_url": (
                sentry_url_template.format(event_id=event_id) if sentry_url_template and event_id else None
            ),
        }

    models = [_model(state, recent, incident, slos.get(state.key, [])) for state, recent in pairs]
    return {
        "version": VERSION,
        "generated_at": summary["checked_at"],
        "status": summary["status"],
        "counts": summary["models"],
        "providers": summary["providers"],
        "models": models,
    }


def _model(
    state: ModelHealthState,
    recent: Recent,
    incident: Callable[[ModelKey, TimelineEntry], dict[str, Any]],
    slos: list[dict[str, Any]],
) -> dict[str, Any]:
    """A ``/health/models`` entry, with the last error's scrubbed message, the history and incidents."""
    error = state.last_error
    return {
        **model_detail(state),
        "last_error": None
        if error is None
        else {
            "type": error.error_type,
            "message": error.message,  # scrubbed by the registry
            "status_code": error.status_code,
            "at": iso(error.at),
        },
        "history": {
            "end": iso(recent.end),
            "bucket_s": BUCKET_S,
            "good": list(recent.good),
            "bad": list(recent.bad),
        },
        "incidents": [incident(state.key, entry) for entry in recent.timeline],
        "slos": slos,
    }


def _slos_by_key(registry: Any) -> dict[ModelKey, list[dict[str, Any]]]:
    """Each key's SLO budgets, when the registry has SLOs (an empty map otherwise)."""
    if not getattr(registry, "slos", ()):
        return {}
    found: dict[ModelKey, list[dict[str, Any]]] = {}
    for status in registry.slo_statuses():
        found.setdefault(status.key, []).append(
            {
                "name": status.slo,
                "sli": status.sli,
                "objective": status.objective,
                "error_budget_remaining": status.error_budget_remaining,
                "active_alerts": list(status.active_alerts),
            }
        )
    return found
