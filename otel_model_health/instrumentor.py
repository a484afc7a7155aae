"""``ModelHealthInstrumentor``: model health without a code change, under ``opentelemetry-instrument``.

Declared as the ``model_health`` entry point of the ``opentelemetry_instrumentor`` group (pyproject.toml),
so ``opentelemetry-instrument python app.py`` loads it after the distro has set up the SDK providers, and
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=model_health`` leaves it out. ``instrument()``:

1. ``configure()`` with the providers it is given, else the global ones the distro installed: our span
   processor is added to the app's tracer provider and the observable ``model_health.*`` metrics to its
   meter provider; nothing of the app's is replaced or shut down. Everything else comes from the
   environment as for ``configure()`` (breaker, Sentry through ``SENTRY_*``, ``MODEL_HEALTH_HTTP_PORT``
   for ``/health``). An app that called ``configure()`` itself keeps its handle.
2. ``transport.autowrap.patch()``: every httpx / httpx2 client created from then on is measured.

A bad value in our settings is a start-up error. ``opentelemetry-instrument`` logs an instrumentor's
exception and runs the app anyway, without telemetry; under it we stop the process instead, with one line
naming the value, because an app that silently lost its telemetry is what this library exists to avoid.
Called from code, ``instrument()`` raises ``ConfigurationError`` as ``configure()`` does.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Collection
from typing import Any, Final

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from .configure import configure, current
from .handle import ModelHealth
from .instrument.transport import autowrap
from .settings import ConfigurationError

logger: Final = logging.getLogger("otel_model_health")

ENTRY_POINT_NAME: Final = "model_health"
_AUTO_DIR: Final = os.path.join("opentelemetry", "instrumentation", "auto_instrumentation")


class ModelHealthInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Measures every model call made through httpx or httpx2 clients created after ``instrument()``.

    ``instrument(tracer_provider=..., meter_provider=...)`` as for contrib instrumentors (default: the
    global providers). ``uninstrument()`` restores the client classes, takes the automatic wrappers off
    the clients created meanwhile, and shuts down the handle ``instrument()`` created (flushing, never
    shutting down, the app's providers)."""

    _handle: ModelHealth | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        # httpx or httpx2, whichever is installed: patch() skips a missing one, so no dependency to check.
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        existing = current()
        try:
            handle = configure(
                tracer_provider=kwargs.get("tracer_provider"), meter_provider=kwargs.get("meter_provider")
            )
        except (ConfigurationError, ImportError, OSError) as exc:
            if under_opentelemetry_instrument():
                _stop_start_up(exc)
            raise
        self._handle = handle if handle is not existing else None
        patched = autowrap.patch()
        logger.debug("otel_model_health: instrumented clients of %s", ", ".join(patched) or "nothing")

    def _uninstrument(self, **kwargs: Any) -> None:
        autowrap.unpatch()
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.shutdown()


def under_opentelemetry_instrument() -> bool:
    """True while ``opentelemetry-instrument``'s ``sitecustomize`` is starting the process."""
    module = sys.modules.get("sitecustomize")
    path = getattr(module, "__file__", None) or ""
    return _AUTO_DIR in os.path.normpath(path)


def _stop_start_up(exc: BaseException) -> None:
    # Written, not logged: with no logging set up, the logger's last resort would print it a second time.
    sys.stderr.write(f"otel_model_health: start-up stopped: {type(exc).__name__}: {exc}\n")
    sys.stderr.flush()
    # Not SystemExit: site.py turns an exception out of sitecustomize into a fatal-error traceback.
    os._exit(1)
