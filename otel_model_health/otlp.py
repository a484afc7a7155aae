"""OTLP span and metric exporters for http/protobuf and gRPC.

``opentelemetry-exporter-otlp`` is the ``otlp`` extra: it is imported only here, and only when an endpoint
is configured, so the rest of the library works without it (and without grpcio).

Settings the exporters read from the environment themselves (``OTEL_EXPORTER_OTLP_*_TIMEOUT``,
``_COMPRESSION``, ``_CERTIFICATE``, ``_CLIENT_KEY``, ``_CLIENT_CERTIFICATE``, ``OTEL_EXPORTER_OTLP_INSECURE``)
keep working: only endpoint and headers are passed explicitly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .settings import ConfigurationError, OtlpSignalSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.trace.export import SpanExporter

INSTALL_HINT: Final = "pip install 'otel_model_health[otlp]'"


class MissingExtraError(ImportError):
    """An optional dependency needed by the requested configuration is not installed."""


def _missing(settings: OtlpSignalSettings, exc: ImportError) -> MissingExtraError:
    package = "grpcio and " if settings.protocol == "grpc" else ""
    return MissingExtraError(
        f"OTLP {settings.protocol} export of {settings.signal} (set by {settings.source}) needs "
        f"{package}opentelemetry-exporter-otlp: {INSTALL_HINT} ({exc})"
    )


def span_exporter(settings: OtlpSignalSettings) -> SpanExporter:
    """Build the OTLP span exporter for ``settings`` (``signal == "traces"``)."""
    if settings.signal != "traces":
        raise ConfigurationError(f"span_exporter needs traces settings, got {settings.signal!r}")
    headers = settings.headers_dict() or None
    try:
        if settings.protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpanExporter,
            )

            return GrpcSpanExporter(endpoint=settings.endpoint, headers=headers)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

        return HttpSpanExporter(endpoint=settings.endpoint, headers=headers)
    except ImportError as exc:
        raise _missing(settings, exc) from exc


def metric_exporter(settings: OtlpSignalSettings) -> MetricExporter:
    """Build the OTLP metric exporter for ``settings`` (``signal == "metrics"``).

    Temporality and aggregation are left to the exporter's defaults, which honour
    ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` and
    ``OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION``.
    """
    if settings.signal != "metrics":
        raise ConfigurationError(f"metric_exporter needs metrics settings, got {settings.signal!r}")
    headers = settings.headers_dict() or None
    try:
        if settings.protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcMetricExporter,
            )

            return GrpcMetricExporter(endpoint=settings.endpoint, headers=headers)
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )

        return HttpMetricExporter(endpoint=settings.endpoint, headers=headers)
    except ImportError as exc:
        raise _missing(settings, exc) from exc
