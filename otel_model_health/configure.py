"""``configure()``: one call wiring providers, OTLP export, the span processor, health metrics and Sentry.

This is the only module that knows every part. Rules it follows:

- Never replace what the app owns. An SDK tracer provider already installed (or passed in) gets our span
  processor added; an SDK meter provider gets our observable instruments; neither gets exporters from us,
  nor is shut down by us. Providers are created only when the global one is still the API's proxy/no-op.
- Idempotent: a second ``configure()`` returns the same handle. If its options differ from the first
  call's, a warning names them and they are ignored (like ``logging.basicConfig``): configuration often
  runs from several entry points, and telemetry set-up must not crash an app. ``handle.shutdown()``
  followed by ``configure()`` starts over.
- ``OTEL_SDK_DISABLED=true``: no providers, no exporters, no span processor; the registry still records
  every call our instrumentation sees, so health, ``/health`` and the Sentry bridge keep working.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Protocol

from opentelemetry import metrics, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from . import defaults, semconv
from ._deadline import budget, left, run_until
from ._internal import report_internal_error
from ._version import __version__
from .health.metrics import HealthMetrics, register_health_metrics
from .health.processor import ModelHealthSpanProcessor
from .health.registry import HealthRegistry
from .instrument.deferred import run_deferred
from .options import Options, keywords_of, options_of
from .sentry.bridge import SentryBridge
from .sentry.init import import_sentry_sdk, init_sentry
from .settings import ConfigurationError, Settings, read_settings

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider

logger: Final = logging.getLogger("otel_model_health")

DEFAULT_TIMEOUT_S: Final = 10.0
# The budget of the shutdown configure() runs at interpreter exit when the app did not call shutdown():
# sentry-sdk's default shutdown_timeout, so an unreachable backend delays exit by at most this.
EXIT_TIMEOUT_S: Final = 2.0

_lock = threading.RLock()
_current: ModelHealth | None = None
# Providers this module created and installed as global in this process. The OTel API lets a global be
# set once per process, so after a shutdown() the next configure() must recognise them as ours (not the
# app's) and must not try to attach to them.
_our_globals: set[int] = set()


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
        self._options = options
        self._classifier_set = classifier_set
        self._exporters = tuple(exporters)
        self._stop_hooks: list[Callable[[], Any]] = []
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
        global _current
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
        with _lock:
            if _current is self:
                _current = None
                defaults.set_defaults(registry=None, tracer_provider=None, meter_provider=None)
                if self._classifier_set:
                    defaults.set_call_classifier(None)

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


@keywords_of(Options)
def configure(**keywords: Any) -> ModelHealth:
    """Set up model health for this process and return its handle. See docs/configuration.md.

    The keyword options are those of ``options.Options``; every option overrides the matching
    environment variable. Raises ``ConfigurationError`` (a ``ValueError``) naming the option or variable
    on an invalid value, and ``ImportError`` naming the extra to install when OTLP export or Sentry is
    requested without its package.
    """
    options = options_of("configure", keywords)
    global _current
    with _lock:
        current = _current
        if current is not None and not current.is_shut_down:
            differing = [
                f.name
                for f in fields(Options)
                if not _same(getattr(options, f.name), getattr(current._options, f.name))
            ]
            if differing:
                logger.warning(
                    "otel_model_health.configure() was already called; returning the existing handle and "
                    "ignoring the different options %s (call handle.shutdown() first to reconfigure)",
                    ", ".join(differing),
                )
            return current
        handle = _build(read_settings(options), options)
        _current = handle
        return handle


def current() -> ModelHealth | None:
    """The handle of the active ``configure()``, or None."""
    return _current


# --- building ------------------------------------------------------------------------------------------


def _build(settings: Settings, options: Options) -> ModelHealth:
    # Everything that can fail on bad input is checked before anything is started or installed.
    sentry_plan = _plan_sentry(settings)
    tracer_provider, meter_provider = options.tracer_provider, options.meter_provider
    span_exporter = metric_exporter = None
    if not settings.sdk_disabled:
        # The otlp module and the SDK's metrics (~11 ms of imports) load only when configure() runs.
        from . import otlp

        if settings.traces is not None and tracer_provider is None and _is_unset(trace.get_tracer_provider()):
            span_exporter = otlp.span_exporter(settings.traces)
        if (
            settings.metrics is not None
            and meter_provider is None
            and _is_unset(metrics.get_meter_provider())
        ):
            metric_exporter = otlp.metric_exporter(settings.metrics)

    registry = HealthRegistry(config=settings.breaker, max_keys=settings.max_keys)
    tp: trace.TracerProvider | None = tracer_provider
    mp: metrics.MeterProvider | None = meter_provider
    owns_tp = owns_mp = False
    processor: ModelHealthSpanProcessor | None = None
    health_metrics: HealthMetrics | None = None
    if not settings.sdk_disabled:
        resource = None
        if tp is None:
            tp = trace.get_tracer_provider()
            if _is_unset(tp):
                resource = _resource(settings)
                tp = _create_tracer_provider(resource, span_exporter, settings.set_global)
                owns_tp = True
            elif settings.traces is not None:
                logger.info("an SDK tracer provider is installed: the app owns span export, none added")
        processor = _attach_processor(tp, registry)
        if mp is None:
            mp = metrics.get_meter_provider()
            if _is_unset(mp):
                resource = resource if resource is not None else _resource(settings)
                mp = _create_meter_provider(resource, metric_exporter, settings)
                owns_mp = True
            elif settings.metrics is not None:
                logger.info("an SDK meter provider is installed: the app owns metric export, none added")
        health_metrics = _register_metrics(registry, mp)

    bridge, sentry_client = _start_sentry(sentry_plan, settings, registry, tp, mp)
    defaults.set_defaults(
        registry=registry, tracer_provider=tp, meter_provider=mp, capture_content=settings.capture_content
    )
    call_classifier = options.call_classifier
    if call_classifier is not None:
        defaults.set_call_classifier(call_classifier)
    handle = ModelHealth(
        settings=settings,
        options=options,
        registry=registry,
        tracer_provider=tp,
        meter_provider=mp,
        owns_tracer_provider=owns_tp,
        owns_meter_provider=owns_mp,
        sentry_bridge=bridge,
        sentry_client=sentry_client,
        span_processor=processor,
        health_metrics=health_metrics,
        classifier_set=call_classifier is not None,
        exporters=[e for e in (span_exporter, metric_exporter) if e is not None],
    )
    # One bounded shutdown at exit replaces the providers' own exit handlers (created without them), and
    # runs before sentry-sdk's and the bridge's (atexit runs the last registered first), leaving them
    # nothing to wait for.
    atexit.register(handle._at_exit)
    return handle


def _is_unset(provider: object) -> bool:
    """True when ``provider`` is the API's proxy or no-op provider, or one we installed earlier."""
    if id(provider) in _our_globals:
        return True
    return isinstance(
        provider,
        (
            trace.ProxyTracerProvider,
            trace.NoOpTracerProvider,
            metrics._internal._ProxyMeterProvider,
            metrics.NoOpMeterProvider,
        ),
    )


def _resource(settings: Settings) -> Resource:
    # Resource.create adds the SDK's own attributes and the env detector; ours (options or env) win.
    return Resource.create(settings.resource_dict())


def _create_tracer_provider(resource: Resource, exporter: Any, set_global: bool) -> TracerProvider:
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if set_global and _is_unset_api(trace.get_tracer_provider()):
        trace.set_tracer_provider(provider)
        _our_globals.add(id(provider))
    return provider


def _create_meter_provider(resource: Resource, exporter: Any, settings: Settings) -> SdkMeterProvider:
    # Imported here for the same ~11 ms as the otlp module (see _build).
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader

    readers: list[MetricReader] = []
    if exporter is not None:
        readers.append(
            PeriodicExportingMetricReader(
                exporter, export_interval_millis=settings.metric_export_interval_s * 1000.0
            )
        )
    provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
    if settings.set_global and _is_unset_api(metrics.get_meter_provider()):
        metrics.set_meter_provider(provider)
        _our_globals.add(id(provider))
    return provider


def _is_unset_api(provider: object) -> bool:
    # Only the API's own placeholders can be replaced: set_*_provider works once per process.
    return isinstance(
        provider,
        (trace.ProxyTracerProvider, trace.NoOpTracerProvider, metrics._internal._ProxyMeterProvider),
    )


def _attach_processor(
    provider: trace.TracerProvider, registry: HealthRegistry
) -> ModelHealthSpanProcessor | None:
    """Add ``ModelHealthSpanProcessor`` so other instrumentations' GenAI spans feed the registry."""
    add = getattr(provider, "add_span_processor", None)
    if add is None:
        logger.warning(
            "tracer provider %s has no add_span_processor: GenAI spans of other instrumentations will not "
            "feed model health (ours still do)",
            type(provider).__name__,
        )
        return None
    processor = ModelHealthSpanProcessor(registry)
    add(processor)
    return processor


def _register_metrics(registry: HealthRegistry, provider: metrics.MeterProvider) -> HealthMetrics:
    return register_health_metrics(registry, provider.get_meter(semconv.SCOPE_NAME, __version__))


# --- Sentry ----------------------------------------------------------------------------------------------


def _plan_sentry(settings: Settings) -> bool:
    """Whether to install the bridge; raises on a Sentry set-up that cannot work."""
    sentry = settings.sentry
    if not sentry.enabled:
        return False
    try:
        sentry_sdk = import_sentry_sdk()
    except ImportError as exc:
        raise ImportError(f"SENTRY_ENABLED is true but {exc}") from exc
    if not sentry.dsn and not sentry_sdk.is_initialized():
        raise ConfigurationError(
            "SENTRY_ENABLED is true but SENTRY_DSN (option sentry_dsn) is not set and the app has not "
            "initialised sentry_sdk: set a DSN or SENTRY_ENABLED=false"
        )
    return True


def _start_sentry(
    planned: bool,
    settings: Settings,
    registry: HealthRegistry,
    tracer_provider: trace.TracerProvider | None,
    meter_provider: metrics.MeterProvider | None,
) -> tuple[SentryBridge | None, Any]:
    """The bridge, and the sentry_sdk client if this call initialised it (else None)."""
    if not planned:
        return None, None
    # Leaves an app-initialised client alone; otherwise initialises with the SDK's GenAI integrations off.
    client = import_sentry_sdk().get_client() if init_sentry(settings.sentry) else None
    bridge = SentryBridge(
        critical_models=settings.critical_models,
        trace_url_template=settings.trace_url_template,
        tracer_provider=tracer_provider,
    )
    bridge.attach(registry)
    if meter_provider is not None:
        try:
            bridge.register_dropped_metric(meter_provider)
        except Exception:
            report_internal_error("configure.sentry_dropped_metric")
    return bridge, client


# --- helpers ----------------------------------------------------------------------------------------------


def _same(a: object, b: object) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:
        return False


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
