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
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import metrics, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from . import defaults, semconv
from ._internal import report_internal_error
from ._version import __version__
from .handle import ModelHealth
from .health.metrics import HealthMetrics, register_health_metrics
from .health.processor import ModelHealthSpanProcessor
from .health.registry import HealthRegistry
from .options import Options, keywords_of, options_of
from .sentry.bridge import SentryBridge
from .sentry.init import import_sentry_sdk, init_sentry
from .settings import ConfigurationError, Settings, read_settings

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider

logger: Final = logging.getLogger("otel_model_health")


_lock = threading.RLock()
_current: ModelHealth | None = None
# Providers this module created and installed as global in this process. The OTel API lets a global be
# set once per process, so after a shutdown() the next configure() must recognise them as ours (not the
# app's) and must not try to attach to them.
_our_globals: set[int] = set()


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
                if not _same(getattr(options, f.name), getattr(current.options, f.name))
            ]
            if differing:
                logger.warning(
                    "otel_model_health.configure() was already called; returning the existing handle and "
                    "ignoring the different options %s (call handle.shutdown() first to reconfigure)",
                    ", ".join(differing),
                )
            return current
        app_exports = options.tracer_provider is not None or not _is_unset(trace.get_tracer_provider())
        handle = _build(read_settings(options, app_exports=app_exports), options)
        _current = handle
        return handle


def current() -> ModelHealth | None:
    """The handle of the active ``configure()``, or None."""
    return _current


# --- building ------------------------------------------------------------------------------------------


def _build(settings: Settings, options: Options) -> ModelHealth:
    # Everything that can fail on bad input is checked before anything is started or installed.
    sentry_plan = _plan_sentry(settings)
    if settings.store is not None:
        from .health.fleet.store import import_redis  # noqa: PLC0415 (the fleet loads only when used)

        import_redis()  # an ImportError naming the extra, before anything starts
    tracer_provider, meter_provider = options.tracer_provider, options.meter_provider
    span_exporter = metric_exporter = None
    if not settings.sdk_disabled:
        # The otlp module and the SDK's metrics (~11 ms of imports) load only when configure() runs.
        from . import otlp  # noqa: PLC0415

        if settings.traces is not None and tracer_provider is None and _is_unset(trace.get_tracer_provider()):
            span_exporter = otlp.span_exporter(settings.traces)
        if (
            settings.metrics is not None
            and meter_provider is None
            and _is_unset(metrics.get_meter_provider())
        ):
            metric_exporter = otlp.metric_exporter(settings.metrics)

    registry = HealthRegistry(
        config=settings.breaker, max_keys=settings.max_keys, slos=settings.slos, store=_store(settings)
    )
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
        registry=registry,
        tracer_provider=tp,
        meter_provider=mp,
        capture_content=settings.capture_content,
        enforce=settings.enforce,
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
        forget=_forget,
    )
    # One bounded shutdown at exit replaces the providers' own exit handlers (created without them), and
    # runs before sentry-sdk's and the bridge's (atexit runs the last registered first), leaving them
    # nothing to wait for.
    atexit.register(handle._at_exit)
    if settings.health_http_port is not None:
        _serve_health(handle, settings)
    return handle


def _serve_health(handle: ModelHealth, settings: Settings) -> None:
    """``/health`` from a daemon thread (``MODEL_HEALTH_HTTP_PORT``); stopped first on shutdown."""
    from .asgi import health_asgi_app  # noqa: PLC0415
    from .health_server import HealthServer  # noqa: PLC0415

    port = settings.health_http_port
    assert port is not None
    server = HealthServer(health_asgi_app(handle.registry), settings.health_http_host, port)
    try:
        server.start()
    except OSError:
        handle.shutdown(0.0)  # a port that cannot be bound fails configure() as a bad value does
        raise
    handle.health_server = server
    handle.on_shutdown(server.stop)


def _store(settings: Settings) -> Any:
    """The fleet store of the settings: a URL becomes a ``RedisStore`` under the service's prefix."""
    store = settings.store
    if isinstance(store, str):
        from .health.fleet import RedisStore  # noqa: PLC0415

        service = settings.service_name or dict(settings.resource_attributes).get("service.name")
        return RedisStore(store, service_name=service)
    return store


def _forget(handle: ModelHealth) -> None:
    """A shut-down handle is no longer the current one; the defaults it installed go with it."""
    global _current
    with _lock:
        if _current is handle:
            _current = None
            defaults.set_defaults(registry=None, tracer_provider=None, meter_provider=None)
            if handle.classifier_set:
                defaults.set_call_classifier(None)


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
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader  # noqa: PLC0415

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
