"""OTLP span and metric exporters for http/protobuf and gRPC.

``opentelemetry-exporter-otlp`` is the ``otlp`` extra: it is imported only here (by name), and only when an
endpoint is configured, so the rest of the library works without it (and without grpcio).

Settings the exporters read from the environment themselves (``OTEL_EXPORTER_OTLP_*_TIMEOUT``,
``_COMPRESSION``, ``_CERTIFICATE``, ``_CLIENT_KEY``, ``_CLIENT_CERTIFICATE``, ``OTEL_EXPORTER_OTLP_INSECURE``)
keep working: only endpoint and headers are passed explicitly.

Each exporter comes wrapped in a ``Tracked*Exporter`` that counts failed exports: the SDK's batch span
processor and periodic metric reader report a flush as done even when its export failed, and
``ModelHealth.force_flush()`` must not.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from typing import Any, Final

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .settings import ConfigurationError, OtlpSignalSettings

INSTALL_HINT: Final = "pip install 'otel_model_health[otlp]'"


class MissingExtraError(ImportError):
    """An optional dependency needed by the requested configuration is not installed."""


def _missing(settings: OtlpSignalSettings, exc: ImportError) -> MissingExtraError:
    package = "grpcio and " if settings.protocol == "grpc" else ""
    return MissingExtraError(
        f"OTLP {settings.protocol} export of {settings.signal} (set by {settings.source}) needs "
        f"{package}opentelemetry-exporter-otlp: {INSTALL_HINT} ({exc})"
    )


class _Tracking:
    """Failed-export count and a once-only shutdown, shared by the two wrappers."""

    def __init__(self) -> None:
        # Exports of one exporter never overlap (the batch processor and the reader each hold a lock
        # around them), so the count needs no lock of its own.
        self.failed_exports = 0
        self._shutdown_lock = threading.Lock()
        self._shut_down = False

    def _shutdown_once(self, inner: SpanExporter | MetricExporter) -> None:
        # Called by the SDK at the end of its own shutdown and by ModelHealth.shutdown() to cut a
        # hanging export short: the second call must not reach the exporter (it logs a warning).
        with self._shutdown_lock:
            if self._shut_down:
                return
            self._shut_down = True
        inner.shutdown()


class TrackedSpanExporter(_Tracking, SpanExporter):
    """A span exporter that counts its failed exports in ``failed_exports``."""

    def __init__(self, inner: SpanExporter) -> None:
        _Tracking.__init__(self)
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:
            self.failed_exports += 1
            raise
        if result is not SpanExportResult.SUCCESS:
            self.failed_exports += 1
        return result

    def shutdown(self) -> None:
        self._shutdown_once(self.inner)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class TrackedMetricExporter(_Tracking, MetricExporter):
    """A metric exporter that counts its failed exports in ``failed_exports``."""

    def __init__(self, inner: MetricExporter) -> None:
        _Tracking.__init__(self)
        # The reader reads the exporter's temporality and aggregation preferences from these.
        MetricExporter.__init__(
            self,
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception:
            self.failed_exports += 1
            raise
        if result is not MetricExportResult.SUCCESS:
            self.failed_exports += 1
        return result

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._shutdown_once(self.inner)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)


# The exporter class of each signal, in ``opentelemetry.exporter.otlp.proto.{http,grpc}.<module>``.
_EXPORTER_CLASSES: Final = {
    "traces": ("trace_exporter", "OTLPSpanExporter"),
    "metrics": ("metric_exporter", "OTLPMetricExporter"),
}


def _exporter(settings: OtlpSignalSettings, signal: str) -> Any:
    if settings.signal != signal:
        raise ConfigurationError(f"a {signal} exporter needs {signal} settings, got {settings.signal!r}")
    module_name, class_name = _EXPORTER_CLASSES[signal]
    proto = "grpc" if settings.protocol == "grpc" else "http"
    try:
        module = importlib.import_module(f"opentelemetry.exporter.otlp.proto.{proto}.{module_name}")
    except ImportError as exc:
        raise _missing(settings, exc) from exc
    return getattr(module, class_name)(endpoint=settings.endpoint, headers=settings.headers_dict() or None)


def span_exporter(settings: OtlpSignalSettings) -> TrackedSpanExporter:
    """Build the OTLP span exporter for ``settings`` (``signal == "traces"``)."""
    return TrackedSpanExporter(_exporter(settings, "traces"))


def metric_exporter(settings: OtlpSignalSettings) -> TrackedMetricExporter:
    """Build the OTLP metric exporter for ``settings`` (``signal == "metrics"``).

    Temporality and aggregation are left to the exporter's defaults, which honour
    ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` and
    ``OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION``.
    """
    return TrackedMetricExporter(_exporter(settings, "metrics"))
