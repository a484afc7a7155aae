"""Fixtures of the decorator tests: in-memory OTel providers and a list-collecting health recorder."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_model_health.health.types import CallResult
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome


@dataclass
class Recorded:
    key: ModelKey
    outcome: Outcome
    kwargs: dict[str, Any]


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
    def outcomes(self) -> list[Outcome]:
        return [r.outcome for r in self.records]


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    recorder: ListRecorder

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def options(self) -> dict[str, Any]:
        """Keyword arguments for monitor()/probe()."""
        return {
            "registry": self.recorder,
            "tracer_provider": self.tracer_provider,
            "meter_provider": self.meter_provider,
        }

    def metric_points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        points: list[Any] = []
        if data is None:
            return points
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points


@pytest.fixture
def telemetry() -> Any:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(tracer_provider, meter_provider, exporter, reader, ListRecorder())
    tracer_provider.shutdown()
    meter_provider.shutdown()
