"""configure() only → spans and metrics over OTLP to real receivers on 127.0.0.1.

http/protobuf goes to oteltap (embedded), gRPC to the rotel collector (child process, prints resources).
Each configure() runs in its own child process: global providers can be set once per process.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from otlp_receivers import (  # noqa: F401  (fixtures)
    CHILD_CALLS,
    OtelTap,
    Rotel,
    attributes,
    data_points,
    oteltap_fixture,
    rotel_collector_fixture,
    run_child,
)

pytestmark = pytest.mark.integration


def _model() -> str:
    return f"wire-{uuid.uuid4().hex[:8]}"


def _spans_of(tap: OtelTap, model: str) -> list[Any]:
    return [s for s in tap.spans if attributes(s).get("gen_ai.request.model") == model]


def _points_of(tap: OtelTap, name: str, model: str) -> list[Any]:
    return [
        point
        for metric in tap.metrics
        if metric.name == name
        for point in data_points(metric)
        if attributes(point).get("gen_ai.request.model") == model
    ]


def test_http_protobuf_spans_and_metrics_reach_oteltap(oteltap: OtelTap) -> None:
    model = _model()
    result = run_child(
        CHILD_CALLS.format(model=model, calls=2, failures=1, configure_args=""),
        {"OTEL_EXPORTER_OTLP_ENDPOINT": oteltap.endpoint, "OTEL_SERVICE_NAME": "wire-http"},
    )
    assert "STATE 3 1" in result.stdout

    spans = oteltap.wait_for(
        lambda t: len(_spans_of(t, model)) >= 3 and _spans_of(t, model), describe="3 spans"
    )
    assert len(spans) == 3
    ok = [s for s in spans if attributes(s)["model_health.outcome"] == "success"]
    failed = [s for s in spans if attributes(s)["model_health.outcome"] == "failure"]
    assert len(ok) == 2 and len(failed) == 1
    span = ok[0]
    assert span.name == f"chat {model}"
    assert span.kind == 3  # SPAN_KIND_CLIENT
    attrs = attributes(span)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.response.model"] == model
    assert attrs["gen_ai.response.id"] == "resp-1"
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == 8000
    assert attrs["model_health.gateway"] == "test-gw"
    assert attrs["model_health.operation"] == "inference"
    failed_attrs = attributes(failed[0])
    assert failed_attrs["error.type"] == "503"
    assert failed_attrs["http.response.status_code"] == 503
    assert failed[0].status.code == 2  # STATUS_CODE_ERROR

    # GenAI histograms: two successful calls and one failed one, tokens per type.
    duration = oteltap.wait_for(
        lambda t: _points_of(t, "gen_ai.client.operation.duration", model), describe="duration histogram"
    )
    assert sum(p.count for p in duration) == 3
    assert list(duration[0].explicit_bounds)[:2] == [0.01, 0.02]
    tokens = _points_of(oteltap, "gen_ai.client.token.usage", model)
    by_type = {attributes(p)["gen_ai.token.type"]: p for p in tokens}
    assert by_type["input"].sum == 22 and by_type["output"].sum == 14

    # model_health.* observable metrics, read from the registry at collection.
    outcomes = _points_of(oteltap, "model_health.outcomes", model)
    values = {attributes(p)["model_health.outcome"]: p.as_int for p in outcomes}
    assert values == {"success": 2, "failure": 1}
    rate = _points_of(oteltap, "model_health.success_rate", model)
    assert rate and rate[-1].as_double == pytest.approx(2 / 3)
    states = _points_of(oteltap, "model_health.breaker.state", model)
    assert {attributes(p)["model_health.breaker.state"]: p.as_int for p in states}["closed"] == 1


def test_grpc_spans_metrics_and_resource_reach_rotel(rotel_collector: Rotel) -> None:
    model = _model()
    service = f"wire-grpc-{uuid.uuid4().hex[:6]}"
    run_child(
        CHILD_CALLS.format(model=model, calls=1, failures=1, configure_args=""),
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": rotel_collector.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_SERVICE_NAME": service,
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test,team=llm%20ops",
        },
    )

    def complete(text: str) -> bool:
        return text.count(f"Name           : chat {model}") == 2 and "-> Name: model_health.outcomes" in text

    text = rotel_collector.wait_for(complete, describe="2 spans and the model_health metrics")
    # The resource (only rotel shows it): OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, URL-decoded.
    assert f"-> service.name: Str({service})" in text
    assert "-> deployment.environment.name: Str(test)" in text
    assert "-> team: Str(llm ops)" in text
    assert "InstrumentationScope otel_model_health" in text
    assert f"-> gen_ai.request.model: Str({model})" in text
    assert "-> gen_ai.provider.name: Str(openai)" in text
    assert "-> model_health.outcome: Str(failure)" in text
    assert "-> error.type: Str(503)" in text
    for metric in (
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "model_health.outcomes",
        "model_health.success_rate",
        "model_health.breaker.state",
    ):
        assert f"-> Name: {metric}" in text, metric
    # Every resource block of this service's exports names it: spans and metrics share the resource.
    assert len(re.findall(rf"service\.name: Str\({re.escape(service)}\)", text)) >= 2


def test_per_signal_endpoints_and_protocols(oteltap: OtelTap, rotel_collector: Rotel) -> None:
    """Traces over gRPC to rotel, metrics over http/protobuf to oteltap, from per-signal variables."""
    model = _model()
    run_child(
        CHILD_CALLS.format(model=model, calls=1, failures=0, configure_args=""),
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rotel_collector.endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            # A per-signal endpoint is used as given: the path must be complete.
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{oteltap.endpoint}/v1/metrics",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "x-tenant=acme",
        },
    )
    rotel_collector.wait_for(lambda text: f"Name           : chat {model}" in text, describe="the span")
    oteltap.wait_for(lambda t: _points_of(t, "model_health.outcomes", model), describe="metrics")
    assert _spans_of(oteltap, model) == []  # traces did not go to the metrics endpoint


def test_shutdown_exports_everything_before_exit(oteltap: OtelTap) -> None:
    """Long export intervals: only shutdown() can have sent these, and the child exits right after."""
    model = _model()
    calls = 60
    run_child(
        CHILD_CALLS.format(
            model=model, calls=calls, failures=0, configure_args="metric_export_interval_s=3600"
        ),
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": oteltap.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "3600000",  # the batch span processor would wait an hour
        },
    )
    spans = oteltap.wait_for(
        lambda t: len(_spans_of(t, model)) >= calls and _spans_of(t, model), describe="spans"
    )
    assert len(spans) == calls
    duration = oteltap.wait_for(
        lambda t: _points_of(t, "gen_ai.client.operation.duration", model), describe="duration"
    )
    assert sum(p.count for p in duration) == calls
    outcomes = _points_of(oteltap, "model_health.outcomes", model)
    assert [p.as_int for p in outcomes] == [calls]


@pytest.mark.parametrize("signal_off", ["traces", "metrics"])
def test_exporter_selection_none_turns_a_signal_off(oteltap: OtelTap, signal_off: str) -> None:
    """OTEL_<SIGNAL>_EXPORTER=none: no exporter for that signal, although the endpoint is set."""
    model = _model()
    run_child(
        CHILD_CALLS.format(model=model, calls=1, failures=0, configure_args=""),
        {"OTEL_EXPORTER_OTLP_ENDPOINT": oteltap.endpoint, f"OTEL_{signal_off.upper()}_EXPORTER": "none"},
    )
    # The child has exited: shutdown() exported what it had, so the other signal is there already.
    if signal_off == "traces":
        oteltap.wait_for(lambda t: _points_of(t, "model_health.outcomes", model), describe="metrics")
        assert _spans_of(oteltap, model) == []
    else:
        oteltap.wait_for(lambda t: _spans_of(t, model), describe="the span")
        assert _points_of(oteltap, "model_health.outcomes", model) == []
