"""Hostile model strings cannot exhaust the GenAI histograms' series: a model gets its own series only
once the registry tracks it, and at most ``MAX_METRIC_MODELS`` do; the rest are ``_OTHER``."""

from __future__ import annotations

import json

import httpx2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_model_health import HealthRegistry, ModelHealthTransport
from otel_model_health.instrument.instruments import MAX_METRIC_MODELS

HOSTILE = "\x1b[31mred\x00\nmodel"


def upstream(request: httpx2.Request) -> httpx2.Response:
    model = json.loads(request.content)["model"]
    if model.startswith("made-up-"):
        return httpx2.Response(404, json={"error": {"code": "model_not_found", "message": "no such model"}})
    body = {
        "id": "x",
        "object": "chat.completion",
        "model": HOSTILE if model == "echo" else model,
        "choices": [],
    }
    return httpx2.Response(200, json=body)


def duration_models(reader: InMemoryMetricReader) -> dict[str, int]:
    counts: dict[str, int] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "gen_ai.client.operation.duration":
                    for point in metric.data.data_points:
                        model = str((point.attributes or {})["gen_ai.request.model"])
                        counts[model] = counts.get(model, 0) + point.count
    return counts


def make(registry: HealthRegistry) -> tuple[httpx2.Client, InMemoryMetricReader, InMemorySpanExporter]:
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    transport = ModelHealthTransport(
        httpx2.MockTransport(upstream),
        registry=registry,
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    return httpx2.Client(transport=transport), reader, exporter


def call(client: httpx2.Client, model: str) -> int:
    url = "http://127.0.0.1:9/v1/chat/completions"
    return client.post(url, json={"model": model, "messages": []}).status_code


def test_made_up_names_never_crowd_out_a_genuine_model() -> None:
    client, reader, _ = make(HealthRegistry())
    for i in range(2_100):  # past the SDK's 2,000 series per instrument
        assert call(client, f"made-up-{i}") == 404
    assert call(client, "genuine-model") == 200
    assert duration_models(reader) == {"_OTHER": 2_100, "genuine-model": 1}


def test_successful_models_beyond_the_bound_are_other() -> None:
    client, reader, _ = make(HealthRegistry(max_keys=1_000))
    for i in range(MAX_METRIC_MODELS + 50):
        assert call(client, f"m{i}") == 200
    counts = duration_models(reader)
    assert len(counts) == MAX_METRIC_MODELS + 1
    assert counts["_OTHER"] == 50
    assert counts["m0"] == 1


def test_response_model_is_cleaned_on_spans() -> None:
    client, _, exporter = make(HealthRegistry())
    assert call(client, "echo") == 200
    (span,) = exporter.get_finished_spans()
    model = (span.attributes or {})["gen_ai.response.model"]
    assert isinstance(model, str) and model.isprintable() and "red" in model
