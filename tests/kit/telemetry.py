"""In-memory OTel providers for one test, and readers of what they exported."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_model_health.health.types import HealthRecorder

API_KEY: Final = "sk-test-SECRETKEY123456"  # a fake secret: tests check it never reaches telemetry
SCOPE: Final = "otel_model_health"  # the instrumentation scope of the library's spans

R = TypeVar("R", bound=HealthRecorder)


@dataclass
class Telemetry(Generic[R]):
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    recorder: R

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def model_spans(self) -> list[ReadableSpan]:
        """The spans of otel_model_health (an SDK's own spans, if any, are left out)."""
        return [s for s in self.spans() if s.instrumentation_scope and s.instrumentation_scope.name == SCOPE]

    def options(self) -> dict[str, Any]:
        """Keyword arguments for monitor()/probe()/instrument_client()."""
        return {
            "registry": self.recorder,
            "tracer_provider": self.tracer_provider,
            "meter_provider": self.meter_provider,
        }

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name → its data points (one collection)."""
        out: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out

    def metric_points(self, name: str) -> list[Any]:
        """The data points of one metric (one collection)."""
        return self.metrics().get(name, [])

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def make_telemetry(recorder: R) -> Telemetry[R]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    return Telemetry(tracer_provider, meter_provider, exporter, reader, recorder)
