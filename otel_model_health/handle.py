"""``ModelHealth``: the handle ``configure()`` returns, and its lifecycle (flush, shutdown, exit).

Every exporter, provider and Sentry shutdown shares one deadline (``_deadline.run_until``): the
OpenTelemetry SDK's ``TracerProvider.shutdown()`` takes no timeout, so the blocking calls run side by
side in daemon threads and the handle returns at the deadline whatever they do.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Final, Protocol

from opentelemetry import metrics, trace

from ._deadline import budget, left, run_until
from ._internal import report_internal_error
from .health.metrics import HealthMetrics
from .health.processor import ModelHealthSpanProcessor
from .health.registry import HealthRegistry
from .instrument.deferred import run_deferred
from .options import Options
from .sentry.bridge import SentryBridge
from .sentry.init import import_sentry_sdk
from .settings import Settings

DEFAULT_TIMEOUT_S: Final = 10.0
# The budget of the shutdown run at interpreter exit when the app did not call shutdown(): sentry-sdk's
# default shutdown_timeout, so an unreachable backend delays exit by at most this.
EXIT_TIMEOUT_S: Final = 2.0


class _Stoppable(Protocol):
    def stop(self) -> Any: ...


class _TrackedExporter(Protocol):
    """``otlp.TrackedSpanExporter`` / ``TrackedMetricExporter``, without importing the otlp extra."""

    failed_exports: int

    def shutdown(self) -> None: ...


class ModelHealth:
    """The handle ``configure()`` returns: the registry, the providers in use, and the lifecycle."""

    def __init__(
        self,
        *,
        settings: Settings,
        options: Options,
        registry: HealthRegistry,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
        owns_tracer_provider: bool,
        owns_meter_provider: bool,
        sentry_bridge: SentryBridge | None,
        sentry_client: Any,
        span_processor: ModelHealthSpanProcessor | None,
        health_metrics: HealthMetrics | None,
        classifier_set: bool,
        exporters: Sequence[_TrackedExporter] = (),
        forget: Callable[[ModelHealth], None] = lambda _handle: None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.tracer_provider = tracer_provider  # None when the SDK is disabled and none was given
        self.meter_provider = meter_provider
        self.owns_tracer_provider = owns_tracer_provider
        self.owns_meter_provider = owns_meter_provider
        self.sentry_bridge = sentry_bridge
        # The sentry_sdk client configure() initialised (None when the app's is used): ours to close.
        self._sentry_client = sentry_client
        self.span_processor = span_processor
        self._health_metrics = health_metrics
        self.options = options  # as given to configure(), to compare a second call with
        self.classifier_set = classifier_set
        self._forget = forget  # configure()'s: drop this handle as the current one
        self._exporters = tuple(exporters)
        self._stop_hooks: list[Callable[[], Any]] = []
        # The /health server of MODEL_HEALTH_HTTP_PORT (a health_server.HealthServer), if configured.
        self.health_server: Any = None
        self._shut_down = False
        self._lock = threading.Lock()

    # --- lifecycle --------------------------------------------------------------------------------------

    @property
    def is_shut_down(self) -> bool:
        return self._shut_down

    @property
    def owns_sentry_client(self) -> bool:
        """True when ``configure()`` initialised sentry_sdk; ``shutdown()`` then closes that client."""
        return self._sentry_client is not None

    def attach_monitor(self, monitor: _Stoppable) -> _Stoppable:
        """Stop ``monitor`` (a ``HealthMonitor``) first on ``shutdown()``, so no probe runs mid-flush."""
        self.on_shutdown(monitor.stop)
        return monitor

    def on_shutdown(self, hook: Callable[[], Any]) -> None:
        """Run ``hook`` at the start of ``shutdown()`` (last registered runs first)."""
        with self._lock:
            self._stop_hooks.append(hook)

    def force_flush(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
        """Export buffered spans and metrics and send queued Sentry events, all within ``timeout_s``.

        True only if everything was delivered or handed off (docs/configuration.md says what that means
        for each part); False if anything failed, was still pending at the deadline, or could not be
        confirmed. Never raises.
        """
        deadline = time.monotonic() + budget(timeout_s)
        # Calls whose end a garbage collection deferred are delivered first, so their spans are flushed.
        _safely(run_deferred, "configure.force_flush.deferred")
        failed_before = self._failed_exports()
        bridge = self.sentry_bridge
        # The bridge's worker emits an incident span per event: hand the events over before the spans
        # are flushed. Normally instant; a hanging capture only uses up this flush's own budget.
        handed_over = bridge is None or bridge.wait_idle(left(deadline))
        calls: list[tuple[str, Callable[[], object]]] = [
            (f"configure.force_flush.{name}", partial(_flush, provider, deadline))
            for name, provider in (("traces", self.tracer_provider), ("metrics", self.meter_provider))
            if provider is not None
        ]
        if bridge is not None:
            calls.append(("configure.force_flush.sentry", lambda: bridge.flush(timeout=left(deadline))))
        flushed = all(run_until(deadline, calls))
        return handed_over and flushed and self._failed_exports() == failed_before

    def shutdown(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Stop monitors, flush spans, metrics and Sentry, shut down what we created, reset defaults.

        Everything shares one deadline, ``timeout_s`` from now: the call returns within it (plus thread
        start-up) even when an exporter or Sentry hangs. Providers the app owns are flushed, never shut
        down. Idempotent; never raises.
        """
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            hooks, self._stop_hooks = self._stop_hooks, []
        deadline = time.monotonic() + budget(timeout_s)
        _safely(lambda: atexit.unregister(self._at_exit), "configure.shutdown.atexit")
        if hooks:
            run_until(deadline, [("configure.shutdown.hooks", partial(_run_hooks, hooks))])
        _safely(run_deferred, "configure.shutdown.deferred")
        # A fleet store's last outcomes and held transitions: before the bridge closes, which reports them.
        _safely(lambda: self.registry.close(timeout=left(deadline)), "configure.shutdown.fleet")
        bridge = self.sentry_bridge
        if bridge is not None:
            # First, so the incident spans of the last events reach the tracer provider before it closes.
            _safely(lambda: bridge.close(timeout=left(deadline)), "configure.shutdown.sentry_close")
        calls: list[tuple[str, Callable[[], object]]] = []
        for name, provider, owned in (
            ("traces", self.tracer_provider, self.owns_tracer_provider),
            ("metrics", self.meter_provider, self.owns_meter_provider),
        ):
            if provider is not None:
                stop = _shutdown if owned else _flush
                calls.append((f"configure.shutdown.{name}", partial(stop, provider, deadline)))
        if bridge is not None:
            client = self._sentry_client
            send = bridge.flush if client is None else partial(_close_sentry_client, client)
            calls.append(("configure.shutdown.sentry", lambda: send(timeout=left(deadline))))
        run_until(deadline, calls)
        for exporter in self._exporters:
            # An export still hanging at the deadline: stop its retries and close its connection, so its
            # thread ends soon rather than after the exporter's own timeout.
            _safely(exporter.shutdown, "configure.shutdown.exporter")
        health_metrics = self._health_metrics
        if health_metrics is not None:
            # The API cannot remove instruments from the app's meter provider: make them report nothing.
            _safely(health_metrics.close, "configure.shutdown.metrics")
        _safely(lambda: self._forget(self), "configure.shutdown.forget")

    def _at_exit(self) -> None:
        self.shutdown(EXIT_TIMEOUT_S)

    def _failed_exports(self) -> int:
        return sum(exporter.failed_exports for exporter in self._exporters)

    def __enter__(self) -> ModelHealth:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return (
            f"ModelHealth(tracer_provider={type(self.tracer_provider).__name__}, "
            f"owns_tracer_provider={self.owns_tracer_provider}, "
            f"meter_provider={type(self.meter_provider).__name__}, "
            f"owns_meter_provider={self.owns_meter_provider}, sentry={self.sentry_bridge is not None}, "
            f"shut_down={self._shut_down})"
        )


def _flush(provider: object, deadline: float) -> bool:
    flush = getattr(provider, "force_flush", None)
    if flush is None:
        return True
    return bool(flush(int(left(deadline) * 1000)))


def _shutdown(provider: object, deadline: float) -> None:
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is None:
        return
    # MeterProvider.shutdown takes timeout_millis; TracerProvider.shutdown takes none (it flushes without
    # a bound: run_until is what bounds it).
    if isinstance(provider, metrics.MeterProvider):
        shutdown(timeout_millis=left(deadline) * 1000)
    else:
        shutdown()


def _run_hooks(hooks: list[Callable[[], Any]]) -> None:
    for hook in reversed(hooks):
        _safely(hook, "configure.shutdown.hook")


def _close_sentry_client(client: Any, *, timeout: float) -> None:
    """Uninstall the sentry_sdk client configure() initialised, then close it within ``timeout``.

    Uninstalled first, sentry-sdk's exit handler no longer finds it (and cannot race this close, which
    may still be sending after shutdown() returned), and a later ``configure()`` initialises a new one.
    """
    sentry_sdk = import_sentry_sdk()
    if sentry_sdk.get_client() is client:
        sentry_sdk.get_global_scope().set_client(None)
    client.close(timeout=timeout)


def _safely(action: Callable[[], Any], where: str) -> None:
    try:
        action()
    except Exception:
        report_internal_error(where)
