"""The registry, tracer provider and meter provider that instrumentation uses when given none.

``configure()`` sets them; without it, a process-wide registry is created on first use and the global
OpenTelemetry providers are used. ``generation`` changes on every ``set_defaults`` so cached
instruments know when to re-resolve (one integer compare per call).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from opentelemetry import metrics, trace

from .outcomes import CallClassifier, classify_call

if TYPE_CHECKING:
    from .health.registry import HealthRegistry

_lock = threading.Lock()
_registry: HealthRegistry | None = None
_tracer_provider: trace.TracerProvider | None = None
_meter_provider: metrics.MeterProvider | None = None
_capture_content: bool | None = None
_enforce: bool | None = None
generation = 0

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = frozenset({"true", "1", "span_only", "span_and_event"})


def set_defaults(
    *,
    registry: HealthRegistry | None,
    tracer_provider: trace.TracerProvider | None,
    meter_provider: metrics.MeterProvider | None,
    capture_content: bool | None = None,
    enforce: bool | None = None,
) -> None:
    global _registry, _tracer_provider, _meter_provider, _capture_content, _enforce, generation
    with _lock:
        _registry = registry
        _tracer_provider = tracer_provider
        _meter_provider = meter_provider
        _capture_content = capture_content
        _enforce = enforce
        generation += 1


def default_registry() -> HealthRegistry:
    global _registry
    registry = _registry
    if registry is not None:
        return registry
    # First use only: `import otel_model_health` stays cheap for apps that never record.
    from .health.registry import HealthRegistry  # noqa: PLC0415

    with _lock:
        if _registry is None:
            _registry = HealthRegistry()
        return _registry


def default_tracer_provider() -> trace.TracerProvider:
    return _tracer_provider if _tracer_provider is not None else trace.get_tracer_provider()


def default_meter_provider() -> metrics.MeterProvider:
    return _meter_provider if _meter_provider is not None else metrics.get_meter_provider()


class _EnvFlag:
    """A yes/no environment variable, read on first use and again after each ``configure()`` (a new
    ``generation``), not on every call."""

    __slots__ = ("_cached", "_on", "variable")

    def __init__(self, variable: str, on: frozenset[str]) -> None:
        self.variable = variable
        self._on = on
        self._cached: tuple[int, bool] | None = None  # (generation, value)

    def get(self) -> bool:
        cached = self._cached
        if cached is not None and cached[0] == generation:
            return cached[1]
        value = os.environ.get(self.variable, "").strip().lower() in self._on
        self._cached = (generation, value)
        return value


_env_capture = _EnvFlag(CAPTURE_CONTENT_ENV, _CAPTURE_ON)


def capture_content_enabled() -> bool:
    """Prompt/completion capture: off unless configure() or the GenAI env variable opts in."""
    return _capture_content if _capture_content is not None else _env_capture.get()


ENFORCE_ENV = "MODEL_HEALTH_ENFORCE"
_env_enforce = _EnvFlag(ENFORCE_ENV, frozenset({"true", "1", "yes", "on"}))


def enforce_enabled() -> bool:
    """Enforcement (docs/enforcement.md) where an instrumentation was given no ``enforce``: configure()'s
    option, else ``MODEL_HEALTH_ENFORCE``."""
    return _enforce if _enforce is not None else _env_enforce.get()


_call_classifier: CallClassifier | None = None


def set_call_classifier(classifier: CallClassifier | None) -> None:
    """Replace the classification of calls our instrumentation observes (None restores the default)."""
    global _call_classifier, generation
    with _lock:
        _call_classifier = classifier
        generation += 1


def call_classifier() -> CallClassifier:
    return _call_classifier if _call_classifier is not None else classify_call
