"""Where the demo's telemetry goes: OTLP when configured, else a JSON-lines file; Sentry, else printed.

Everything goes through ``configure()``, as in an app. Without an OTLP endpoint the demo builds its own
SDK providers writing one JSON document per line to a file and hands them to ``configure()``, which
attaches the span processor and the health metrics to them.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, cast

from ..configure import configure
from ..handle import ModelHealth
from ..health.types import BreakerConfig
from ..settings import ENV_ENDPOINT, signal_env
from ..slo.definition import SLO

_OTLP_VARS = (ENV_ENDPOINT, signal_env("traces", "ENDPOINT"), signal_env("metrics", "ENDPOINT"))
METRIC_EXPORT_INTERVAL_S = 5.0


def otlp_configured() -> bool:
    return any(os.environ.get(name, "").strip() for name in _OTLP_VARS)


class _LineFile:
    """A text file shared by the span and metric exporters' threads: whole lines, never interleaved."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._lock = threading.Lock()
        self.lines = 0

    def write(self, text: str) -> int:
        with self._lock:
            if self._file.closed:
                return 0
            self.lines += text.count("\n")
            return self._file.write(text)

    def flush(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


@dataclass
class DemoTelemetry:
    handle: ModelHealth
    where: str  # one line for the user: where spans, metrics and Sentry events went
    sentry: str
    _file: _LineFile | None
    _providers: tuple[Any, ...]
    _sentry_bridge: Any
    _sentry_client_ours: bool

    @property
    def sentry_bridge(self) -> Any:
        """The bridge sending (SENTRY_DSN) or printing the demo's Sentry events, if any."""
        return self.handle.sentry_bridge or self._sentry_bridge

    def shutdown(self) -> None:
        """Flush and stop everything the demo started: bridge, providers, file. Joins their threads."""
        bridge = self._sentry_bridge
        if bridge is not None:
            bridge.flush(timeout=2.0)
            bridge.close(timeout=2.0)
        self.handle.shutdown()
        for provider in self._providers:
            provider.shutdown()
        if self._file is not None:
            self._file.close()
        if self._sentry_client_ours:
            import sentry_sdk

            sentry_sdk.get_client().close(timeout=2.0)

    def describe_output(self) -> str:
        if self._file is not None:
            return f"spans and metrics: {self._file.lines} JSON lines in {self._file.path}"
        return self.where


def setup_telemetry(
    *,
    breaker: BreakerConfig,
    slos: tuple[SLO, ...] = (),
    telemetry_file: str | None,
    on_sentry_event: Callable[[dict[str, Any]], None],
) -> DemoTelemetry:
    """``configure()`` the demo's process; raises ``ConfigurationError`` on a bad OTel/Sentry variable."""
    dsn = os.environ.get("SENTRY_DSN", "").strip()
    common: dict[str, Any] = {
        "breaker": breaker,
        "slos": slos,
        "service_name": os.environ.get("OTEL_SERVICE_NAME") or "otel-model-health-demo",
        "sentry_enabled": bool(dsn),
        "metric_export_interval_s": METRIC_EXPORT_INTERVAL_S,
    }
    line_file: _LineFile | None = None
    providers: tuple[Any, ...] = ()
    if otlp_configured():
        handle = configure(**common)
        where = "spans and metrics exported over OTLP (OTEL_EXPORTER_OTLP_* variables)"
    else:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        path = telemetry_file or os.path.join(
            tempfile.gettempdir(), f"otel-model-health-demo-{os.getpid()}.jsonl"
        )
        line_file = _LineFile(path)
        out = cast("IO[str]", line_file)
        resource = Resource.create({"service.name": common["service_name"]})
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(
            BatchSpanProcessor(
                ConsoleSpanExporter(out=out, formatter=lambda span: span.to_json(indent=None) + "\n"),
                schedule_delay_millis=1000,
            )
        )
        reader = PeriodicExportingMetricReader(
            ConsoleMetricExporter(out=out, formatter=lambda data: data.to_json(indent=None) + "\n"),
            export_interval_millis=METRIC_EXPORT_INTERVAL_S * 1000,
        )
        meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        providers = (tracer_provider, meter_provider)
        handle = configure(**common, tracer_provider=tracer_provider, meter_provider=meter_provider)
        where = f"spans and metrics as JSON lines in {path}"

    bridge = None
    ours = False
    if dsn:
        sentry = "Sentry: events sent to SENTRY_DSN"
    else:
        bridge, ours, sentry = _printing_sentry(handle, on_sentry_event)
    return DemoTelemetry(
        handle=handle,
        where=where,
        sentry=sentry,
        _file=line_file,
        _providers=providers,
        _sentry_bridge=bridge,
        _sentry_client_ours=ours,
    )


def _printing_sentry(
    handle: ModelHealth, on_event: Callable[[dict[str, Any]], None]
) -> tuple[Any, bool, str]:
    """A SentryBridge whose events are handed to ``on_event`` instead of being sent."""
    try:
        import sentry_sdk
        from sentry_sdk.transport import Transport
    except ImportError:
        return None, False, "Sentry: not shown (pip install 'otel_model_health[sentry]')"
    from ..sentry import SentryBridge, disabled_genai_integrations

    class _HandingTransport(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            event = envelope.get_event()
            if event is not None:
                on_event(event)

    ours = False
    if not sentry_sdk.is_initialized():
        sentry_sdk.init(
            dsn="http://public@127.0.0.1:1/1",  # never contacted: the transport keeps events local
            transport=_HandingTransport(),
            default_integrations=False,
            disabled_integrations=disabled_genai_integrations(),
        )
        ours = True
    bridge = SentryBridge(tracer_provider=handle.tracer_provider).attach(handle.registry)
    return bridge, ours, "Sentry: no SENTRY_DSN, so the events it would have received are printed"
