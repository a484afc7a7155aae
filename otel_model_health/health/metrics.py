"""Observable health metrics, read from the registry at collection time.

A model call pays nothing for these: the registry already keeps the figures, and the SDK asks for them
only when a reader collects (every export interval). Callbacks never raise: an error is reported as an
internal error and the instrument reports nothing for that collection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Final

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from .. import semconv
from .._internal import internal_error_count, report_internal_error
from .types import BreakerState, ModelHealthState

if TYPE_CHECKING:
    from ..slo.status import SloStatus
    from .fleet import RedisStore
    from .registry import HealthRegistry

_STATES: Final = (BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN)


def _key_attributes(state: ModelHealthState) -> dict[str, str]:
    key = state.key
    return {
        semconv.GEN_AI_PROVIDER_NAME: key.provider,
        semconv.GEN_AI_REQUEST_MODEL: key.model,
        semconv.MH_GATEWAY: key.gateway,
    }


def _slo_attributes(status: SloStatus) -> dict[str, str]:
    key = status.key
    return {
        semconv.GEN_AI_PROVIDER_NAME: key.provider,
        semconv.GEN_AI_REQUEST_MODEL: key.model,
        semconv.MH_GATEWAY: key.gateway,
        semconv.MH_SLO_NAME: status.slo,
    }


class HealthMetrics:
    """Handle of the registered instruments. ``close()`` makes every callback report nothing.

    (The OpenTelemetry API cannot remove an instrument; an app that drops its registry closes this.)
    """

    def __init__(self, registry: HealthRegistry, meter: Meter) -> None:
        self._registry = registry
        self._closed = False
        self.outcomes = meter.create_observable_counter(
            semconv.METRIC_MH_OUTCOMES,
            callbacks=[self._guard("outcomes", self._outcomes)],
            unit="{call}",
            description="Model call outcomes by model, operation and outcome.",
        )
        self.success_rate = meter.create_observable_gauge(
            semconv.METRIC_MH_SUCCESS_RATE,
            callbacks=[self._guard("success_rate", self._success_rate)],
            unit="1",
            description="Successes / (successes + failures) in each model's window (absent when empty).",
        )
        self.breaker_state = meter.create_observable_gauge(
            semconv.METRIC_MH_BREAKER_STATE,
            callbacks=[self._guard("breaker_state", self._breaker_state)],
            unit="1",
            description="1 for the current breaker state, 0 for the others (sum: open breakers).",
        )
        self.breaker_transitions = meter.create_observable_counter(
            semconv.METRIC_MH_BREAKER_TRANSITIONS,
            callbacks=[self._guard("breaker_transitions", self._breaker_transitions)],
            unit="{transition}",
            description="Times each model's breaker entered each state.",
        )
        self.evictions = meter.create_observable_counter(
            semconv.METRIC_MH_EVICTIONS,
            callbacks=[self._guard("evictions", self._evictions)],
            unit="{key}",
            description="Model keys evicted from the health registry (least recently used, past its cap).",
        )
        self.internal_errors = meter.create_observable_counter(
            semconv.METRIC_MH_INTERNAL_ERRORS,
            callbacks=[self._guard("internal_errors", self._internal_errors)],
            unit="{error}",
            description="Errors inside otel_model_health's own telemetry code, swallowed.",
        )

        fleet = registry.fleet
        if fleet is not None:
            for name, attribute, unit, description in (
                (
                    semconv.METRIC_MH_STORE_ERRORS,
                    "errors",
                    "{error}",
                    "Failed Redis operations of the fleet store.",
                ),
                (
                    semconv.METRIC_MH_STORE_DROPPED,
                    "dropped",
                    "{outcome}",
                    "Outcomes not shared with the fleet (queue full, or Redis unreachable).",
                ),
                (
                    semconv.METRIC_MH_STORE_IGNORED,
                    "ignored",
                    "{value}",
                    "Foreign or malformed values under the fleet store's prefix, ignored.",
                ),
            ):
                meter.create_observable_counter(
                    name,
                    callbacks=[self._guard(name, partial(_store_count, fleet, attribute))],
                    unit=unit,
                    description=description,
                )
        self.slow_call_rate = meter.create_observable_gauge(
            semconv.METRIC_MH_SLOW_CALL_RATE,
            callbacks=[self._guard("slow_call_rate", self._slow_call_rate)],
            unit="1",
            description="Slow calls / calls in each model's window (absent when empty); at or over "
            "slow_call_rate_threshold the model is degraded.",
        )
        # SLOs (docs/slo.md): one read of every series per collection, shared by the three instruments.
        self.slo_burn_rate = meter.create_observable_gauge(
            semconv.METRIC_MH_SLO_BURN_RATE,
            callbacks=[self._guard("slo_burn_rate", self._slo_burn_rate)],
            unit="1",
            description="Error-budget burn rate of each SLO and model, per window (1 = spends the budget "
            "exactly over the period).",
        )
        self.slo_budget = meter.create_observable_gauge(
            semconv.METRIC_MH_SLO_BUDGET_REMAINING,
            callbacks=[self._guard("slo_budget", self._slo_budget)],
            unit="1",
            description="Share of the SLO period's error budget left (negative when overspent).",
        )
        self.slo_alerts = meter.create_observable_gauge(
            semconv.METRIC_MH_SLO_ALERTS,
            callbacks=[self._guard("slo_alerts", self._slo_alerts)],
            unit="{alert}",
            description="Active SLO burn-rate alerts, by SLO, model and severity.",
        )

    def close(self) -> None:
        self._closed = True

    def _guard(
        self, name: str, callback: Callable[[], Iterable[Observation]]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            if self._closed:
                return []
            try:
                return list(callback())
            except Exception:
                report_internal_error(f"health metric {name}")
                return []

        return observe

    def _outcomes(self) -> Iterable[Observation]:
        for state in self._registry.snapshot():
            base = _key_attributes(state)
            for (operation, outcome), count in state.outcome_totals.items():
                yield Observation(
                    count, {**base, semconv.MH_OPERATION: operation, semconv.MH_OUTCOME: outcome.value}
                )
        for (provider, gateway, operation, outcome), count in self._registry.unattributed_outcomes().items():
            yield Observation(
                count,
                {
                    semconv.GEN_AI_PROVIDER_NAME: provider,
                    semconv.GEN_AI_REQUEST_MODEL: semconv.OTHER_VALUE,
                    semconv.MH_GATEWAY: gateway,
                    semconv.MH_OPERATION: operation,
                    semconv.MH_OUTCOME: outcome.value,
                },
            )

    def _success_rate(self) -> Iterable[Observation]:
        for state in self._registry.snapshot():
            if state.success_rate is not None:
                yield Observation(state.success_rate, _key_attributes(state))

    def _slow_call_rate(self) -> Iterable[Observation]:
        for state in self._registry.snapshot():
            if state.calls_in_window:
                yield Observation(state.slow_calls_in_window / state.calls_in_window, _key_attributes(state))

    def _breaker_state(self) -> Iterable[Observation]:
        for state in self._registry.snapshot():
            base = _key_attributes(state)
            for s in _STATES:
                yield Observation(
                    1 if state.breaker_state is s else 0, {**base, semconv.MH_BREAKER_STATE: s.value}
                )

    def _breaker_transitions(self) -> Iterable[Observation]:
        for state in self._registry.snapshot():
            base = _key_attributes(state)
            for s, count in state.breaker_transitions.items():
                if count:
                    yield Observation(count, {**base, semconv.MH_BREAKER_STATE: s.value})

    def _slo_burn_rate(self) -> Iterable[Observation]:
        for status in self._registry.slo_statuses():
            base = _slo_attributes(status)
            for window, rate in status.burn_rates.items():
                yield Observation(rate, {**base, semconv.MH_SLO_WINDOW: window})

    def _slo_budget(self) -> Iterable[Observation]:
        for status in self._registry.slo_statuses():
            yield Observation(status.error_budget_remaining, _slo_attributes(status))

    def _slo_alerts(self) -> Iterable[Observation]:
        for status in self._registry.slo_statuses():
            base = _slo_attributes(status)
            for severity in ("page", "ticket"):
                count = sum(1 for name in status.active_alerts if name.startswith(severity + ":"))
                yield Observation(count, {**base, semconv.MH_SLO_SEVERITY: severity})

    def _evictions(self) -> Iterable[Observation]:
        yield Observation(self._registry.evictions)

    def _internal_errors(self) -> Iterable[Observation]:
        yield Observation(internal_error_count())


def _store_count(fleet: RedisStore, attribute: str) -> Iterable[Observation]:
    yield Observation(int(getattr(fleet, attribute)))


def register_health_metrics(registry: HealthRegistry, meter: Meter) -> HealthMetrics:
    """Register the observable health instruments of ``registry`` on ``meter``; returns their handle."""
    return HealthMetrics(registry, meter)
