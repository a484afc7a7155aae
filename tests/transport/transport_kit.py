"""Helpers of the transport tests: in-memory OTel providers, a list-collecting recorder, and readers of
what was exported. (A module of its own: `from conftest import` would depend on which conftest.py
pytest imported first.)"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_model_health.health.types import CallResult
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome

API_KEY = "sk-test-SECRETKEY123456"


@dataclass
class Recorded:
    key: ModelKey
    outcome: Outcome
    kwargs: dict[str, Any]

    @property
    def error_type(self) -> Any:
        return self.kwargs.get("error_type")


@dataclass
class ListRecorder:
    """Implements the HealthRecorder protocol of health/types.py."""

    records: list[Recorded] = field(default_factory=list)
    _clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def now(self) -> float:
        return float(next(self._clock))

    def has_succeeded(self, key: ModelKey) -> bool:
        return any(r.key == key and r.outcome is Outcome.SUCCESS for r in self.records)

    def tracks(self, key: ModelKey) -> bool:
        return True  # every key recorded here has its own series

    def record_result(self, key: ModelKey, result: CallResult) -> None:
        kwargs: dict[str, Any] = result._asdict()
        outcome = kwargs.pop("outcome")
        kwargs["operation"] = kwargs.pop("health_operation")
        self.records.append(Recorded(key, outcome, kwargs))

    @property
    def outcomes(self) -> list[tuple[Outcome, Any]]:
        return [(r.outcome, r.error_type) for r in self.records]


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    recorder: Any

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def model_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.instrumentation_scope.name == "otel_model_health"]

    def options(self) -> dict[str, Any]:
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


def make_telemetry(recorder: Any = None) -> Telemetry:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    return Telemetry(
        tracer_provider,
        meter_provider,
        exporter,
        reader,
        recorder if recorder is not None else ListRecorder(),
    )
