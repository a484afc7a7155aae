"""Data types of the health engine: configuration, states, snapshots and transitions.

These are the contract between the engine (``health/``), the instrumentation that feeds it
(``instrument/``) and the listeners that read it (Sentry bridge, /health, CLI).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Literal, NamedTuple, Protocol

from opentelemetry.trace import SpanContext

from ..keys import ModelKey
from ..outcomes import Outcome


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class HealthStatus(enum.StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"  # HALF_OPEN, rate-limited, or success rate below the degraded threshold
    UNHEALTHY = "unhealthy"  # breaker OPEN
    UNKNOWN = "unknown"  # no outcome yet
    STALE = "stale"  # no outcome for `stale_after_s`


class TransitionKind(enum.StrEnum):
    FIRST_FAILURE = "first_failure"  # first failure of a healthy or new model
    BREAKER_OPENED = "breaker_opened"  # CLOSED → OPEN
    HALF_OPEN = "half_open"  # OPEN → HALF_OPEN (wait elapsed)
    HALF_OPEN_FAILED = "half_open_failed"  # a trial failed: HALF_OPEN → OPEN
    RECOVERED = "recovered"  # HALF_OPEN → CLOSED, or a never-opened incident whose window cleared
    PROVIDER_OUTAGE = "provider_outage"  # every known, non-stale model of a provider (≥ 2) unhealthy
    PROVIDER_RECOVERED = "provider_recovered"
    SLOW_CALLS = "slow_calls"  # the window's slow-call rate reached slow_call_rate_threshold: degraded
    SLOW_CALLS_CLEARED = "slow_calls_cleared"  # ... and went back below it
    SLO_ALERT_STARTED = "slo_alert_started"  # an SLO burn-rate alert began (``HealthTransition.slo_alert``)
    SLO_ALERT_RESOLVED = "slo_alert_resolved"  # ... its short window no longer burns above its threshold


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Breaker and status thresholds. Defaults are explained in docs/health-model.md."""

    window_kind: Literal["count", "time"] = "count"
    window_size: int = 20  # outcomes (count window) or one-second buckets (time window)
    failure_rate_threshold: float = 0.5  # CLOSED → OPEN at or above this failure rate ...
    minimum_calls: int = 5  # ... once the window holds at least this many outcomes
    consecutive_failures: int = 5  # or after this many failures in a row
    open_wait_s: float = 30.0  # first OPEN wait
    max_open_wait_s: float = 300.0  # cap of the doubling backoff
    backoff_multiplier: float = 2.0
    jitter: float = 0.1  # ± fraction applied to each OPEN wait
    half_open_trials: int = 3  # trials (and permits) per half-open period
    permit_expiry_s: float = 300.0  # an unreturned try_acquire permit expires after this
    rate_limit_default_s: float = 10.0  # unavailability after a 429 without Retry-After
    degraded_below: float = 0.95  # status `degraded` when the success rate is below this
    stale_after_s: float = 600.0  # status `stale` after this long without an outcome
    # Slow calls (docs/health-model.md#slow-calls): a call at or over its threshold is slow (a stream by its
    # first chunk; 0 turns a threshold off). When the window's slow share reaches the rate (with at least
    # minimum_calls calls) the model is `degraded` (transition slow_calls); it opens only if opted in.
    slow_call_duration_s: float = 60.0
    slow_first_chunk_s: float = 15.0
    slow_call_rate_threshold: float = 0.5
    slow_calls_open: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and (math.isnan(value) or value < 0)
            ):
                raise ValueError(f"BreakerConfig.{f.name} must be >= 0, got {value!r}")
        if self.window_kind not in ("count", "time"):
            raise ValueError(f"BreakerConfig.window_kind must be 'count' or 'time', got {self.window_kind!r}")
        if self.window_size < 1:
            raise ValueError(f"BreakerConfig.window_size must be >= 1, got {self.window_size!r}")
        if not 0 < self.failure_rate_threshold <= 1:
            raise ValueError(
                f"BreakerConfig.failure_rate_threshold must be in (0, 1], got {self.failure_rate_threshold!r}"
            )
        if not 0 < self.slow_call_rate_threshold <= 1:
            raise ValueError(
                "BreakerConfig.slow_call_rate_threshold must be in (0, 1], "
                f"got {self.slow_call_rate_threshold!r}"
            )
        if not 0 <= self.degraded_below <= 1:
            raise ValueError(f"BreakerConfig.degraded_below must be in [0, 1], got {self.degraded_below!r}")
        if self.window_kind == "count" and self.minimum_calls > self.window_size:
            raise ValueError(
                f"BreakerConfig.minimum_calls ({self.minimum_calls}) cannot exceed window_size "
                f"({self.window_size}): the breaker could never trip on failure rate"
            )
        if self.half_open_trials < 1:
            raise ValueError(f"BreakerConfig.half_open_trials must be >= 1, got {self.half_open_trials!r}")
        if self.max_open_wait_s < self.open_wait_s:
            raise ValueError(
                f"BreakerConfig.max_open_wait_s ({self.max_open_wait_s}) must be >= open_wait_s "
                f"({self.open_wait_s})"
            )
        if self.backoff_multiplier < 1:
            raise ValueError(
                f"BreakerConfig.backoff_multiplier must be >= 1, got {self.backoff_multiplier!r}"
            )
        if self.jitter >= 1:
            raise ValueError(f"BreakerConfig.jitter must be in [0, 1), got {self.jitter!r}")


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """The last error seen for a model. ``message`` is already scrubbed of key-like strings."""

    error_type: str | None
    message: str | None
    status_code: int | None
    latency_s: float | None
    at: float  # wall clock, epoch seconds


@dataclass(frozen=True, slots=True)
class ModelHealthState:
    """An immutable snapshot of one model's health. Times are epoch seconds (wall clock)."""

    key: ModelKey
    status: HealthStatus
    breaker_state: BreakerState
    success_rate: float | None  # successes / (successes + failures) in the window; None when empty
    calls_in_window: int  # successes + failures in the window (rate limits and neutral excluded)
    failures_in_window: int
    consecutive_failures: int
    # Totals since the key was first seen, keyed by (model_health.operation, outcome).
    outcome_totals: Mapping[tuple[str, Outcome], int]
    # How many times the breaker entered each state since the key was first seen.
    breaker_transitions: Mapping[BreakerState, int]
    latency_p50_s: float | None  # over the window's calls
    latency_p95_s: float | None
    last_outcome: Outcome | None
    last_outcome_at: float | None
    last_error: ErrorInfo | None
    last_failure_at: float | None
    open_until: float | None  # when OPEN: when half-open begins
    rate_limited_until: float | None
    first_seen_at: float
    # When the registry took this snapshot, on the clock of the times above: ages are differences
    # (``as_of - last_outcome_at``), with no clock conversion. None for a state built by hand.
    as_of: float | None = None
    slow_calls_in_window: int = 0  # calls in the window at or over the slow-call threshold


@dataclass(frozen=True, slots=True)
class SloAlert:
    """One burn-rate alert of one SLO for one model (docs/slo.md)."""

    slo: str
    sli: str  # "availability" | "latency"
    objective: float
    severity: str  # "page" | "ticket"
    burn_rate_threshold: float
    long_window_s: float
    short_window_s: float
    long_burn_rate: float
    short_burn_rate: float
    error_budget_remaining: float  # of the SLO's period: 1 - bad / ((1 - objective) * events)


@dataclass(frozen=True, slots=True)
class HealthTransition:
    """A change worth telling listeners about (Sentry bridge, logs, CLI)."""

    kind: TransitionKind
    key: ModelKey  # for provider transitions: the model whose change triggered it
    before: BreakerState
    after: BreakerState
    before_status: HealthStatus
    after_status: HealthStatus
    state: ModelHealthState  # the model's figures right after the change
    operation: str  # model_health.operation of the causing call
    error: ErrorInfo | None  # the causing (or last) error
    at: float  # epoch seconds
    # The span of the call that caused the transition (None when there was none, e.g. a clock
    # driven OPEN → HALF_OPEN, or a record() without a span).
    trace_id: int | None = None
    span_id: int | None = None
    sampled: bool | None = None
    # RECOVERED: incident figures.
    time_to_recover_s: float | None = None
    failed_calls_in_incident: int | None = None
    # PROVIDER_OUTAGE / PROVIDER_RECOVERED: the provider and its models at the time.
    provider: str | None = None
    provider_models: tuple[ModelKey, ...] = field(default=())
    # A fleet store (docs/fleet.md): True when another process won this transition (or the change was
    # learned from the fleet), so incident listeners such as the Sentry bridge leave the report to it.
    remote: bool = False
    # SLO_ALERT_STARTED / SLO_ALERT_RESOLVED: the alert, its SLO and the burn rates of the moment.
    slo_alert: SloAlert | None = None


class CallResult(NamedTuple):
    """One model call's result: built once by the instrumentation (or a caller of ``record``), handed to
    the registry, and read for the span. A NamedTuple: immutable and cheap to build on the hot path.

    ``health_operation`` is ``model_health.operation`` (``inference`` | ``health_check``), not the GenAI
    ``gen_ai.operation.name`` (``chat``, ``embeddings`` …) of the span."""

    outcome: Outcome
    health_operation: str = "inference"
    error_type: str | None = None
    error_message: str | None = None
    status_code: int | None = None
    latency_s: float | None = None
    started_at: float | None = None  # the registry clock when the call started (``now()``)
    retry_after_s: float | None = None
    span_context: SpanContext | None = None
    first_chunk_s: float | None = None  # a stream: seconds from the start to its first chunk


class HealthListener(Protocol):
    def __call__(self, transition: HealthTransition, /) -> None: ...


class HealthRecorder(Protocol):
    """What the instrumentation needs of a registry: a clock for start times, ``record``, and two
    questions about a key (is a 404 its failure? may it have its own metric series?)."""

    def now(self) -> float:
        """The registry's clock (monotonic seconds): pass it back as ``started_at``."""
        ...

    def has_succeeded(self, key: ModelKey) -> bool:
        """The key has recorded a success: a 404 for it is the model's failure, not a made-up name."""
        ...

    def tracks(self, key: ModelKey) -> bool:
        """The key is one the registry keeps."""
        ...

    def record_result(self, key: ModelKey, result: CallResult) -> None: ...
