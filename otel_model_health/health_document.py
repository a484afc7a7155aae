"""The ``/health`` JSON document (the registry's snapshots summed up by status and provider) and the
model entry of ``/health/models`` that the status page's document extends.

Presentation, so it lives beside the ASGI app that serves it (``asgi.py``), not in the engine;
``HealthRegistry.summary()`` is its documented entry point (docs/health-endpoint.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from .health.types import HealthStatus, ModelHealthState
from .keys import ModelKey

_HEALTHY = HealthStatus.HEALTHY.value
_DEGRADED = HealthStatus.DEGRADED.value
_UNHEALTHY = HealthStatus.UNHEALTHY.value
_UNKNOWN = HealthStatus.UNKNOWN.value
_COUNTED = (
    HealthStatus.HEALTHY,
    HealthStatus.DEGRADED,
    HealthStatus.UNHEALTHY,
    HealthStatus.STALE,
    HealthStatus.UNKNOWN,
)


def iso(epoch_s: float | None) -> str | None:
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat()


def model_detail(state: ModelHealthState) -> dict[str, Any]:
    """One entry of ``GET /health/models``."""
    error = state.last_error
    return {
        "provider": state.key.provider,
        "model": state.key.model,
        "gateway": state.key.gateway,
        "status": state.status.value,
        "breaker_state": state.breaker_state.value,
        "success_rate": state.success_rate,
        "calls_in_window": state.calls_in_window,
        "failures_in_window": state.failures_in_window,
        "consecutive_failures": state.consecutive_failures,
        "last_outcome": None if state.last_outcome is None else state.last_outcome.value,
        "last_outcome_at": iso(state.last_outcome_at),
        "last_error_type": None if error is None else error.error_type,
        "last_failure_at": iso(state.last_failure_at),
        "open_until": iso(state.open_until),
        "rate_limited_until": iso(state.rate_limited_until),
        "latency_p50_s": state.latency_p50_s,
        "latency_p95_s": state.latency_p95_s,
    }


class HealthSource(Protocol):
    def snapshot(self) -> list[ModelHealthState]: ...

    def provider_outages(self) -> set[str]: ...

    def wall_time(self) -> float: ...


def health_document(source: HealthSource, *, provider: str | None = None) -> dict[str, Any]:
    """Overall status, model counts by status, per-provider status, and when it was checked.

    Overall: ``unhealthy`` when a provider is in an outage, ``degraded`` when any model is not healthy
    (unhealthy or degraded), ``unknown`` with no model, else ``healthy``."""
    states = source.snapshot()
    outages = source.provider_outages()
    wanted = None if provider is None else ModelKey(provider=provider, model="-").provider
    counts = {status.value: 0 for status in _COUNTED}
    providers: dict[str, dict[str, Any]] = {}
    for state in states:
        name = state.key.provider
        if wanted is not None and name != wanted:
            continue
        status = state.status.value
        counts[status] += 1
        entry = providers.setdefault(name, {"status": _HEALTHY, "models": 0, "unhealthy": 0})
        entry["models"] += 1
        if status == _UNHEALTHY:
            entry["unhealthy"] += 1
        if status in (_UNHEALTHY, _DEGRADED) and entry["status"] == _HEALTHY:
            entry["status"] = _DEGRADED
    for name, entry in providers.items():
        if name in outages:
            entry["status"] = _UNHEALTHY
    total = sum(counts.values())
    if any(entry["status"] == _UNHEALTHY for entry in providers.values()):
        overall = _UNHEALTHY
    elif counts[_DEGRADED] or counts[_UNHEALTHY]:
        overall = _DEGRADED
    elif total == 0:
        overall = _UNKNOWN
    else:
        overall = _HEALTHY
    return {
        "status": overall,
        "models": {"total": total, **counts},
        "providers": providers,
        "checked_at": datetime.fromtimestamp(source.wall_time(), tz=UTC).isoformat(),
    }
