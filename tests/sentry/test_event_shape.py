"""The shape of the events the bridge sends, and the reverse-link span it leaves in the causing trace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bugsink_server import AT, CapturingTransport, capturing_sentry, make_transition
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_model_health import semconv
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import TransitionKind
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.sentry import SentryBridge
from otel_model_health.sentry.events import build_event, cut_tags

K = TransitionKind


@pytest.fixture
def transport() -> Iterator[CapturingTransport]:
    with capturing_sentry() as captured:
        yield captured


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(spans: InMemorySpanExporter) -> TracerProvider:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    return tp


@pytest.fixture
def bridge(provider: TracerProvider) -> Iterator[SentryBridge]:
    b = SentryBridge(
        tracer_provider=provider,
        trace_url_template="http://localhost:16686/trace/{trace_id}",
    )
    yield b
    b.close()


def capture_one(bridge: SentryBridge, transport: CapturingTransport, **kwargs: Any) -> dict[str, Any]:
    kind = kwargs.pop("kind", K.BREAKER_OPENED)
    bridge(make_transition(kind, **kwargs))
    assert bridge.flush(5.0)
    assert len(transport.events) == 1
    return transport.events[0]


def test_breaker_opened_event(bridge: SentryBridge, transport: CapturingTransport) -> None:
    event = capture_one(bridge, transport)
    assert event["level"] == "error"
    assert event["message"] == "Model unavailable: openai/gpt-4o via openrouter (breaker opened, 503)"
    assert event["fingerprint"] == ["model-health", "openai", "openrouter", "gpt-4o"]
    assert event["tags"] == {
        "provider": "openai",
        "gateway": "openrouter",
        "model_id": "gpt-4o",
        "operation": "inference",
        "transition": "breaker_opened",
        "breaker_state": "open",
        "error_type": "503",
        "status": "unhealthy",
    }
    context = event["contexts"]["model_health"]
    assert {k: context[k] for k in (
        "model_id", "provider", "gateway", "operation", "status", "status_code", "response_time_ms",
        "error_count", "success_rate", "circuit_breaker_state", "error_message", "trace_sampled",
    )} == {
        "model_id": "gpt-4o", "provider": "openai", "gateway": "openrouter", "operation": "inference",
        "status": "unhealthy", "status_code": 503, "response_time_ms": 250.0, "error_count": 6,
        "success_rate": 0.4, "circuit_breaker_state": "open", "error_message": "Service Unavailable",
        "trace_sampled": True,
    }  # fmt: skip
    assert context["last_failure"] == "2026-09-21T14:13:19+00:00"
    assert context["trace_url"] == "http://localhost:16686/trace/0af7651916cd43dd8448eb211c80319c"
    assert event["contexts"]["trace"]["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert event["contexts"]["trace"]["span_id"] == "00f067aa0ba902b7"
    # A message event: Sentry and Bugsink title it by the message (an exception would title it "503: ...").
    assert "exception" not in event
    assert event["timestamp"].startswith("2026-09-21T14:13:20")
    assert "user" not in event


def test_first_failure_and_half_open_failed_messages(
    bridge: SentryBridge, transport: CapturingTransport
) -> None:
    bridge(make_transition(K.FIRST_FAILURE, error_type="timeout", status_code=None, message="read timeout"))
    bridge(make_transition(K.HALF_OPEN_FAILED, model="gpt-4o-mini"))
    assert bridge.flush(5.0)
    assert [e["message"] for e in transport.events] == [
        "Model failing: openai/gpt-4o via openrouter (first failure, timeout)",
        "Model still unavailable: openai/gpt-4o-mini via openrouter (half-open trial failed, 503)",
    ]
    assert transport.events[0]["level"] == "warning"
    assert transport.events[0]["tags"]["error_type"] == "timeout"


def test_outage_event_is_grouped_by_provider(bridge: SentryBridge, transport: CapturingTransport) -> None:
    models = (ModelKey(provider="openai", model="gpt-4o"), ModelKey(provider="openai", model="gpt-4o-mini"))
    event = capture_one(bridge, transport, kind=K.PROVIDER_OUTAGE, provider_models=models)
    assert event["level"] == "fatal"
    assert event["fingerprint"] == ["model-health-outage", "openai"]
    assert event["message"] == "Provider outage: openai (2 models unhealthy)"
    # Provider-level tags only: the triggering model's would make model_id:gpt-4o return the outage.
    assert event["tags"] == {"provider": "openai", "transition": "provider_outage"}
    assert event["contexts"]["model_health"] == {
        "provider": "openai",
        "transition": "provider_outage",
        "provider_models": ["openai/gpt-4o@direct", "openai/gpt-4o-mini@direct"],
        "models_unhealthy": 2,
        "last_model": "openai/gpt-4o@openrouter",
        "last_error_type": "503",
        "last_status_code": 503,
        "last_error_message": "Service Unavailable",
        "last_failure": "2026-09-21T14:13:19+00:00",
        "trace_sampled": True,
        "trace_url": "http://localhost:16686/trace/0af7651916cd43dd8448eb211c80319c",
    }


def test_no_error_leaves_no_error_tag(bridge: SentryBridge, transport: CapturingTransport) -> None:
    event = capture_one(bridge, transport, error_type=None, message=None)
    assert "error_type" not in event["tags"]
    assert event["message"] == "Model unavailable: openai/gpt-4o via openrouter (breaker opened)"


def test_api_key_in_the_error_message_is_scrubbed(
    bridge: SentryBridge, transport: CapturingTransport
) -> None:
    # The bridge reads the registry's snapshot, whose last error is scrubbed once when it is first read:
    # record through the registry, as every call does.
    secret = "sk-proj-abcdefghijklmnopqrstuvwxyz123456"
    registry = HealthRegistry()
    bridge.attach(registry)
    registry.record(
        ModelKey(provider="openai", model="gpt-4o"),
        Outcome.FAILURE,
        error_type="503",
        status_code=503,
        error_message=f"503 upstream rejected key {secret}",
    )
    assert bridge.flush(5.0)
    (event,) = transport.events  # the first failure
    assert secret not in repr(event)
    assert "[REDACTED]" in event["contexts"]["model_health"]["error_message"]


def test_long_tags_are_cut_to_sentry_limits(bridge: SentryBridge, transport: CapturingTransport) -> None:
    long_model = "m" * 190 + "-" + "x" * 9  # 200 chars, the ModelKey cap
    event = capture_one(bridge, transport, model=long_model, error_type="E" * 500)
    assert event["tags"]["model_id"] == long_model
    assert event["tags"]["error_type"] == "E" * 200
    cut = cut_tags({"k" * 40: "v\nw" * 100})
    assert cut == {"k" * 32: ("v w" * 100)[:200]}


def test_trace_context_equals_the_causing_span(
    bridge: SentryBridge, transport: CapturingTransport, provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    with provider.get_tracer("app").start_as_current_span("chat gpt-4o") as causing:
        ctx = causing.get_span_context()
    event = capture_one(bridge, transport, trace_id=ctx.trace_id, span_id=ctx.span_id)
    assert event["contexts"]["trace"]["trace_id"] == f"{ctx.trace_id:032x}"
    assert event["contexts"]["trace"]["span_id"] == f"{ctx.span_id:016x}"

    incident = [s for s in spans.get_finished_spans() if s.name == semconv.SPAN_INCIDENT]
    assert len(incident) == 1
    span = incident[0]
    assert span.context.trace_id == ctx.trace_id
    assert span.parent is not None and span.parent.span_id == ctx.span_id
    assert span.start_time == span.end_time
    assert dict(span.attributes or {}) == {
        semconv.SENTRY_EVENT_ID: event["event_id"],
        semconv.MH_TRANSITION: "breaker_opened",
        semconv.GEN_AI_PROVIDER_NAME: "openai",
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o",
        semconv.MH_GATEWAY: "openrouter",
        semconv.MH_BREAKER_STATE: "open",
    }


def test_unsampled_cause_leaves_no_incident_span(
    bridge: SentryBridge, transport: CapturingTransport, spans: InMemorySpanExporter
) -> None:
    event = capture_one(bridge, transport, sampled=False)
    assert event["contexts"]["model_health"]["trace_sampled"] is False
    assert spans.get_finished_spans() == ()


def test_transition_without_span_gets_a_root_incident_span(
    bridge: SentryBridge, transport: CapturingTransport, spans: InMemorySpanExporter
) -> None:
    event = capture_one(bridge, transport, trace_id=None, span_id=None, sampled=None)
    assert event["contexts"]["model_health"]["trace_url"] is None
    (span,) = spans.get_finished_spans()
    assert span.parent is None
    assert (span.attributes or {})[semconv.SENTRY_EVENT_ID] == event["event_id"]


def test_build_event_is_pure() -> None:
    transition = make_transition(K.FIRST_FAILURE)
    event = build_event(transition, level="warning")
    assert event["timestamp"].timestamp() == AT
    assert event["contexts"]["model_health"]["trace_url"] is None
    assert len(event["event_id"]) == 32


def test_dropped_metric(transport: CapturingTransport) -> None:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    bridge = SentryBridge(queue_size=1)
    try:
        bridge.register_dropped_metric(meter_provider)
        bridge.close()  # transitions after close are dropped
        bridge(make_transition(K.BREAKER_OPENED))
        bridge(make_transition(K.BREAKER_OPENED, model="other"))
        data = reader.get_metrics_data()
        assert data is not None
        points = [
            point.value
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == semconv.METRIC_MH_SENTRY_DROPPED
            for point in metric.data.data_points
        ]
        assert points == [2]
    finally:
        meter_provider.shutdown()
