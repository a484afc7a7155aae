"""The measurement core shared by the decorators and the transport."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from kit import ListRecorder, make_telemetry
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from otel_model_health import _internal, semconv
from otel_model_health.instrument.instruments import instruments_for
from otel_model_health.instrument.measurement import current_call, start_call
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome, StreamEnd


def _recorder() -> ListRecorder:
    return ListRecorder(clock=lambda: 100.0)  # every call starts at 100.0


@pytest.fixture
def env() -> tuple[Any, InMemorySpanExporter, InMemoryMetricReader, ListRecorder]:
    t = make_telemetry(_recorder())
    return instruments_for(**t.options()), t.exporter, t.reader, t.recorder


KEY = ModelKey(provider="openai", model="gpt-4o", gateway="openrouter")


def _metrics(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def test_success_span_metrics_and_record(env: Any) -> None:
    inst, exporter, reader, recorder = env
    m = start_call(
        inst, key=KEY, operation_name="chat", server_address="openrouter.ai", server_port=443, stream=False
    )
    assert m is not None
    m.response_model = "gpt-4o-2024-08-06"
    m.response_id = "chatcmpl-1"
    m.finish_reasons = ["stop"]
    m.input_tokens, m.output_tokens = 12, 34
    m.finish(status_code=200)
    m.finish(status_code=500)  # only the first finish counts

    (span,) = exporter.get_finished_spans()
    assert span.name == "chat gpt-4o"
    assert span.kind is SpanKind.CLIENT
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o"
    assert attrs["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert attrs["gen_ai.response.id"] == "chatcmpl-1"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == 12
    assert attrs["gen_ai.usage.output_tokens"] == 34
    assert attrs["model_health.gateway"] == "openrouter"
    assert attrs["model_health.operation"] == "inference"
    assert attrs["model_health.outcome"] == "success"
    assert attrs["server.address"] == "openrouter.ai"
    assert "error.type" not in attrs
    assert span.status.status_code is StatusCode.UNSET

    assert len(recorder.records) == 1
    key, outcome, kwargs = recorder.records[0]
    assert (key, outcome) == (KEY, Outcome.SUCCESS)
    assert kwargs["started_at"] == 100.0
    assert kwargs["span_context"].span_id == span.context.span_id

    metrics = _metrics(reader)
    (duration,) = metrics["gen_ai.client.operation.duration"]
    assert duration.count == 1
    assert list(duration.explicit_bounds)[:3] == [0.01, 0.02, 0.04]
    token_points = {
        dict(p.attributes)["gen_ai.token.type"]: p.sum for p in metrics["gen_ai.client.token.usage"]
    }
    assert token_points == {"input": 12, "output": 34}
    assert "gen_ai.client.operation.time_to_first_chunk" not in metrics


def test_failure_marks_span_and_scrubs_exception(env: Any) -> None:
    inst, exporter, _reader, recorder = env
    m = start_call(inst, key=KEY, operation_name="chat")
    assert m is not None
    exc = RuntimeError("upstream said: Incorrect API key sk-proj-abcdefghijklmnop1234")
    exc.status_code = 503  # type: ignore[attr-defined]
    m.finish(exception=exc, status_code=503, retry_after_s=7.0)
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "503"
    assert span.attributes["model_health.outcome"] == "failure"
    (event,) = span.events
    assert event.name == "exception"
    assert "sk-proj-abcdefghijklmnop1234" not in str(event.attributes)
    assert "sk-proj-abcdefghijklmnop1234" not in (span.status.description or "")
    _key, outcome, kwargs = recorder.records[0]
    assert outcome is Outcome.FAILURE
    assert kwargs["error_type"] == "503"
    assert kwargs["retry_after_s"] == 7.0


def test_stream_records_time_to_first_chunk_and_cancel_is_neutral(env: Any) -> None:
    inst, exporter, reader, recorder = env
    m = start_call(inst, key=KEY, operation_name="chat", stream=True)
    assert m is not None
    m.first_chunk()
    m.finish(status_code=200, stream_end=StreamEnd.CANCELLED)
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["error.type"] == "cancelled"
    assert span.status.status_code is StatusCode.UNSET  # the caller's choice is not an error
    assert recorder.records[0][1] is Outcome.NEUTRAL
    assert _metrics(reader)["gen_ai.client.operation.time_to_first_chunk"][0].count == 1


def test_activate_makes_span_and_call_current_and_keeps_other_values(env: Any) -> None:
    inst, *_ = env
    other_key = otel_context.create_key("test.other")
    outer_token = otel_context.attach(otel_context.set_value(other_key, "kept"))
    try:
        m = start_call(inst, key=KEY, operation_name="chat")
        assert m is not None
        token = m.activate()
        assert trace.get_current_span() is m.span
        assert current_call() is m
        assert otel_context.get_value(other_key) == "kept"
        m.deactivate(token)
        assert trace.get_current_span() is trace.INVALID_SPAN
        assert current_call() is None
        m.finish(status_code=200)
    finally:
        otel_context.detach(outer_token)


def test_activate_never_raises(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    inst, exporter, _reader, recorder = env
    m = start_call(inst, key=KEY, operation_name="chat")
    assert m is not None
    before = _internal.internal_error_count()

    def broken_attach(context: object) -> object:
        raise RuntimeError("context machinery broken")

    monkeypatch.setattr(otel_context, "attach", broken_attach)
    token = m.activate()
    assert token is None
    m.deactivate(token)  # a no-op, as the call then ran in the caller's context
    assert _internal.internal_error_count() == before + 1
    m.finish(status_code=200)
    assert recorder.records[0][1] is Outcome.SUCCESS
    assert len(exporter.get_finished_spans()) == 1


def test_innermost_call_wins(env: Any) -> None:
    inst, exporter, reader, recorder = env
    outer = start_call(inst, key=KEY, operation_name="chat")
    assert outer is not None
    token = outer.activate()
    try:
        assert current_call() is outer
        for status in (503, 200):  # an SDK retry: two attempts seen by the transport
            attempt = start_call(inst, key=KEY, operation_name="chat")
            assert attempt is not None
            attempt.finish(status_code=status)
    finally:
        outer.deactivate(token)
    assert current_call() is None
    outer.finish(status_code=200)

    assert [outcome for _k, outcome, _kw in recorder.records] == [Outcome.FAILURE, Outcome.SUCCESS]
    spans = exporter.get_finished_spans()
    assert len(spans) == 3
    outer_span = spans[-1]
    assert all(s.parent is not None and s.parent.span_id == outer_span.context.span_id for s in spans[:2])
    # The outer span is kept, marked as ours (so the span processor skips it), and its duration is not
    # counted a second time in the metrics.
    assert outer_span.attributes is not None
    assert outer_span.attributes["model_health.outcome"] == "success"
    assert sum(p.count for p in _metrics(reader)["gen_ai.client.operation.duration"]) == 2


def test_sampled_out_calls_still_record_health() -> None:
    recorder = _recorder()
    exporter = InMemorySpanExporter()
    tp = TracerProvider(sampler=ALWAYS_OFF)
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    inst = instruments_for(registry=recorder, tracer_provider=tp, meter_provider=MeterProvider())
    m = start_call(inst, key=KEY, operation_name="chat")
    assert m is not None
    m.finish(status_code=500)
    assert exporter.get_finished_spans() == ()
    assert recorder.records[0][1] is Outcome.FAILURE
    assert recorder.records[0][2]["span_context"].trace_flags.sampled is False


def test_suppressed_instrumentation_measures_nothing(env: Any) -> None:
    inst, *_ = env
    token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        assert start_call(inst, key=KEY, operation_name="chat") is None
    finally:
        otel_context.detach(token)


def test_errors_inside_finish_are_swallowed_and_counted(env: Any) -> None:
    inst, exporter, _reader, _recorder = env

    def broken_record(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("registry exploded")

    m = start_call(inst, key=KEY, operation_name="chat")
    assert m is not None
    inst.recorder.record_result = broken_record
    before = _internal.internal_error_count()
    m.finish(status_code=200)  # must not raise
    assert _internal.internal_error_count() == before + 1
    assert len(exporter.get_finished_spans()) == 1
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_concurrent_finishes_record_once(env: Any) -> None:
    """A finaliser on another thread and the caller may finish the same call at once: one record."""
    import threading

    inst, exporter, _reader, recorder = env
    for _ in range(200):
        m = start_call(inst, key=KEY, operation_name="chat")
        assert m is not None
        barrier = threading.Barrier(4)

        def finish(call: Any = m, gate: threading.Barrier = barrier) -> None:
            gate.wait()
            call.finish(status_code=200)

        threads = [threading.Thread(target=finish) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
    assert len(recorder.records) == 200
    assert len(exporter.get_finished_spans()) == 200


def test_the_message_is_scrubbed_once_and_shared_by_span_and_record(env: Any) -> None:
    inst, exporter, _reader, recorder = env
    secret = "sk-proj-abcdefghijklmnopqrstuvwxyz123456"
    m = start_call(inst, key=KEY, operation_name="chat")
    assert m is not None
    m.finish(exception=RuntimeError(f"Incorrect API key provided: {secret}"))
    (span,) = exporter.get_finished_spans()
    message = recorder.records[0].kwargs["error_message"]
    assert secret not in repr(span.to_json()) and secret not in message
    assert message == "RuntimeError: Incorrect API key provided: [REDACTED]"
    assert span.status.description == message
    (event,) = span.events
    assert event.attributes is not None
    assert event.attributes["exception.message"] == "Incorrect API key provided: [REDACTED]"


def test_a_given_message_is_scrubbed_too(env: Any) -> None:
    inst, exporter, _reader, recorder = env
    m = start_call(inst, key=KEY, operation_name="chat")
    assert m is not None
    m.finish(status_code=503, error_message="bad key: api_key=abcdef0123456789")
    (span,) = exporter.get_finished_spans()
    assert recorder.records[0].kwargs["error_message"] == "bad key: api_key=[REDACTED]"
    assert span.status.description == "bad key: api_key=[REDACTED]"


def test_tracer_and_meter_carry_the_schema_url(env: Any) -> None:
    inst, exporter, reader, _recorder = env
    m = start_call(inst, key=KEY, operation_name="chat")
    assert m is not None
    m.finish(status_code=200)
    (span,) = exporter.get_finished_spans()
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.schema_url == semconv.SCHEMA_URL
    data = reader.get_metrics_data()
    assert data is not None
    scopes = {sm.scope.schema_url for rm in data.resource_metrics for sm in rm.scope_metrics}
    assert scopes == {semconv.SCHEMA_URL}


def test_the_instruments_cache_lets_replaced_providers_go() -> None:
    def providers() -> dict[str, Any]:
        # shutdown_on_exit=False: the SDK's own exit hook would keep them alive
        return {
            "tracer_provider": TracerProvider(shutdown_on_exit=False),
            "meter_provider": MeterProvider(shutdown_on_exit=False),
        }

    recorder = _recorder()
    first = providers()
    alive = weakref.ref(first["tracer_provider"])
    instruments_for(registry=recorder, **first)
    del first
    for _ in range(40):  # what many configure() calls (or tests) leave behind
        instruments_for(registry=recorder, **providers())
    gc.collect()
    assert alive() is None
