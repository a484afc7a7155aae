"""otel_model_health: OpenTelemetry-native model health for LLM apps and gateways.

Public names only. Everything except ``configure`` is imported on first use (PEP 562), so
``import otel_model_health`` stays cheap and works without the optional extras (httpx, httpx2, sentry,
otlp): a name whose extra is missing fails only when it is used, with a message naming the extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from ._version import __version__

# Imported eagerly on purpose: the submodule `configure` has the same name as the function, and a lazy
# import would leave the package attribute `configure` pointing at the module. configure.py imports only
# core dependencies (opentelemetry-api), so this stays cheap.
from .configure import configure, current
from .handle import ModelHealth
from .settings import ConfigurationError

if TYPE_CHECKING:
    from .asgi import health_asgi_app
    from .enforcement import ModelUnavailableError
    from .fallback import NoModelAvailableError, acall_with_fallback, call_with_fallback
    from .health.admission import Choice, Refusal
    from .health.processor import ModelHealthSpanProcessor
    from .health.registry import HealthRegistry
    from .health.types import BreakerConfig, BreakerState, HealthStatus, HealthTransition, ModelHealthState
    from .instrument.decorators import monitor, probe
    from .instrument.transport import (
        AsyncModelHealthTransport,
        ModelHealthTransport,
        instrument_client,
        uninstrument_client,
    )
    from .keys import ModelKey
    from .outcomes import Outcome
    from .probes import HealthMonitor
    from .sentry.bridge import SentryBridge

# public name → the module defining it (relative to this package)
_LAZY: Final[dict[str, str]] = {
    "monitor": ".instrument.decorators",
    "probe": ".instrument.decorators",
    "ModelHealthTransport": ".instrument.transport",
    "AsyncModelHealthTransport": ".instrument.transport",
    "instrument_client": ".instrument.transport",
    "uninstrument_client": ".instrument.transport",
    "ModelHealthSpanProcessor": ".health.processor",
    "HealthRegistry": ".health.registry",
    "BreakerConfig": ".health.types",
    "BreakerState": ".health.types",
    "HealthStatus": ".health.types",
    "HealthTransition": ".health.types",
    "ModelHealthState": ".health.types",
    "Outcome": ".outcomes",
    "ModelKey": ".keys",
    "SentryBridge": ".sentry.bridge",
    "HealthMonitor": ".probes",
    "health_asgi_app": ".asgi",
    "ModelUnavailableError": ".enforcement",
    "NoModelAvailableError": ".fallback",
    "call_with_fallback": ".fallback",
    "acall_with_fallback": ".fallback",
    "Choice": ".health.admission",
    "Refusal": ".health.admission",
}

__all__ = [
    "AsyncModelHealthTransport",
    "BreakerConfig",
    "BreakerState",
    "Choice",
    "ConfigurationError",
    "HealthMonitor",
    "HealthRegistry",
    "HealthStatus",
    "HealthTransition",
    "ModelHealth",
    "ModelHealthSpanProcessor",
    "ModelHealthState",
    "ModelHealthTransport",
    "ModelKey",
    "ModelUnavailableError",
    "NoModelAvailableError",
    "Outcome",
    "Refusal",
    "SentryBridge",
    "__version__",
    "acall_with_fallback",
    "call_with_fallback",
    "configure",
    "current",
    "health_asgi_app",
    "instrument_client",
    "monitor",
    "probe",
    "uninstrument_client",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
