"""The health engine: windows, breakers, the registry, the span processor and health metrics.

Imports nothing of httpx, wrapt, sentry_sdk or the CLI.
"""

from .breaker import Permit
from .metrics import HealthMetrics, register_health_metrics
from .model_state import ModelState, Step
from .processor import ModelHealthSpanProcessor
from .registry import HealthRegistry
from .store import HealthStore, MemoryStore
from .types import (
    BreakerConfig,
    BreakerState,
    CallResult,
    ErrorInfo,
    HealthListener,
    HealthRecorder,
    HealthStatus,
    HealthTransition,
    ModelHealthState,
    TransitionKind,
)

__all__ = [
    "BreakerConfig",
    "BreakerState",
    "CallResult",
    "ErrorInfo",
    "HealthListener",
    "HealthMetrics",
    "HealthRecorder",
    "HealthRegistry",
    "HealthStatus",
    "HealthStore",
    "HealthTransition",
    "MemoryStore",
    "ModelHealthSpanProcessor",
    "ModelHealthState",
    "ModelState",
    "Permit",
    "Step",
    "TransitionKind",
    "register_health_metrics",
]
