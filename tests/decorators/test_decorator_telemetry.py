"""Spans, GenAI metrics and health records of decorated calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from otel_model_health.instrument.decorators import monitor, probe
from otel_model_health.instrument.decorators.call_args import CallArgs
from otel_model_health.outcomes import Outcome

OPENAI_BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
    "usage": {"prompt_tokens": 11, "completion_tokens": 7},
}


class RateLimitError(Exception):
    """Shaped like openai.RateLimitError: a status code and a response with headers."""

    def __init__(self, retry_after: str) -> None:
        super().__init__("Error code: 429 - slow down")
        self.status_code = 429
        self.response = type("R", (), {"headers": {"retry-after": retry_after}})()


class APIConnectionError(Exception):
    pass


def test_success_span_metrics_and_record(telemetry: Any) -> None:
    @monitor(provider="OpenAI", gateway="Portkey", **telemetry.options())
    def chat(prompt: str, *, model: str) -> dict[str, Any]:
        return OPENAI_BODY

    chat("hi", model="gpt-4o")
    (span,) = telemetry.spans()
    assert span.name == "chat gpt-4o"
    assert span.kind is SpanKind.CLIENT
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o"
    assert attrs["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert attrs["gen_ai.response.id"] == "chatcmpl-1"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["model_health.operation"] == "inference"
    assert attrs["model_health.gateway"] == "portkey"
    assert attrs["model_health.outcome"] == "success"
    assert "error.type" not in attrs
    assert span.status.status_code is StatusCode.UNSET

    (rec,) = telemetry.recorder.records
    assert (rec.key.provider, rec.key.model, rec.key.gateway) == ("openai", "gpt-4o", "portkey")
    assert rec.outcome is Outcome.SUCCESS
    assert rec.kwargs["operation"] == "inference"
    assert rec.kwargs["span_context"] == span.get_span_context()
    assert rec.kwargs["started_at"] == 1.0

    (duration,) = telemetry.metric_points("gen_ai.client.operation.duration")
    assert duration.count == 1
    assert duration.attributes["gen_ai.request.model"] == "gpt-4o"
    tokens = telemetry.metric_points("gen_ai.client.token.usage")
    assert sorted((p.attributes["gen_ai.token.type"], p.sum) for p in tokens) == [
        ("input", 11),
        ("output", 7),
    ]


def test_failure_span_has_error_status_and_exception(telemetry: Any) -> None:
    @monitor(provider="openai", **telemetry.options())
    def chat(model: str) -> None:
        raise APIConnectionError("refused")

    with pytest.raises(APIConnectionError):
        chat("gpt-4o")
    (span,) = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "connection_error"
    assert span.attributes["model_health.outcome"] == "failure"
    assert [e.name for e in span.events] == ["exception"]
    (rec,) = telemetry.recorder.records
    assert rec.outcome is Outcome.FAILURE
    assert rec.kwargs["error_type"] == "connection_error"
    assert "refused" in rec.kwargs["error_message"]
    (duration,) = telemetry.metric_points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "connection_error"


def test_sdk_status_code_and_retry_after_are_passed(telemetry: Any) -> None:
    @monitor(**telemetry.options())
    async def chat(model: str) -> None:
        raise RateLimitError("7")

    with pytest.raises(RateLimitError):
        asyncio.run(chat("m"))
    (rec,) = telemetry.recorder.records
    assert rec.outcome is Outcome.RATE_LIMITED
    assert rec.kwargs["status_code"] == 429
    assert rec.kwargs["retry_after_s"] == 7.0
    (span,) = telemetry.spans()
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 429


def test_error_object_in_a_200_body_is_a_failure(telemetry: Any) -> None:
    @monitor(**telemetry.options())
    def chat(model: str) -> dict[str, Any]:
        return {"error": {"type": "overloaded_error", "message": "Overloaded"}}

    chat("claude")
    (rec,) = telemetry.recorder.records
    assert rec.outcome is Outcome.FAILURE
    assert rec.kwargs["error_type"] == "overloaded_error"


def test_probe_sets_health_check_and_operation(telemetry: Any) -> None:
    @probe(model="text-embedding-3-small", provider="openai", operation="embeddings", **telemetry.options())
    def check() -> str:
        return "ok"

    check()
    (span,) = telemetry.spans()
    assert span.name == "embeddings text-embedding-3-small"
    assert span.attributes is not None
    assert span.attributes["model_health.operation"] == "health_check"
    assert telemetry.recorder.records[0].kwargs["operation"] == "health_check"


def test_model_resolution(telemetry: Any) -> None:
    opts = telemetry.options()

    @monitor(**opts)
    def positional(prompt: str, model: str = "default-model") -> None: ...

    @monitor(**opts)
    def no_model(prompt: str) -> None: ...

    @monitor(**opts)
    def var_kwargs(**kwargs: Any) -> None: ...

    @monitor(
        model=lambda call: call.get("deployment"),
        provider=lambda call: call.instance,
        gateway=lambda call: call.arguments["route"],
        **opts,
    )
    def by_callables(deployment: str, route: str = "openrouter") -> None: ...

    positional("p")
    positional("p", "pos-model")
    positional("p", model="kw-model")
    no_model("p")
    var_kwargs(model="from-kwargs")
    var_kwargs()
    by_callables("dep-1")
    assert [str(r.key) for r in telemetry.recorder.records] == [
        "unknown/default-model@direct",
        "unknown/pos-model@direct",
        "unknown/kw-model@direct",
        "unknown/unknown@direct",
        "unknown/from-kwargs@direct",
        "unknown/unknown@direct",
        "unknown/dep-1@openrouter",
    ]


def test_provider_inferred_from_sdk_module(telemetry: Any) -> None:
    def create(*, model: str) -> None: ...

    create.__module__ = "anthropic.resources.messages"
    monitor(**telemetry.options())(create)(model="claude-x")
    assert telemetry.recorder.records[0].key.provider == "anthropic"


def test_attributes_hook_and_stream_argument(telemetry: Any) -> None:
    seen: list[CallArgs] = []

    def hook(call: CallArgs) -> dict[str, Any]:
        seen.append(call)
        return {"app.tenant": call.get("tenant")}

    @monitor(attributes=hook, **telemetry.options())
    def chat(model: str, tenant: str, stream: bool = False) -> None: ...

    chat("m", "acme", stream=True)
    (span,) = telemetry.spans()
    assert span.attributes is not None
    assert span.attributes["app.tenant"] == "acme"
    assert span.attributes["gen_ai.request.stream"] is True
    assert seen[0].args == ("m", "acme")


def test_span_is_current_inside_and_never_leaks(telemetry: Any) -> None:
    outer_tracer = telemetry.tracer_provider.get_tracer("test")
    inside: list[trace.Span] = []

    @monitor(**telemetry.options())
    def call(model: str) -> None:
        inside.append(trace.get_current_span())

    @monitor(**telemetry.options())
    def gen(model: str) -> Iterator[int]:
        inside.append(trace.get_current_span())
        yield 1
        inside.append(trace.get_current_span())
        yield 2

    @monitor(**telemetry.options())
    async def agen(model: str) -> AsyncIterator[int]:
        inside.append(trace.get_current_span())
        yield 1
        inside.append(trace.get_current_span())

    with outer_tracer.start_as_current_span("caller") as caller:
        call("a")
        assert trace.get_current_span() is caller
        for _ in gen("b"):
            assert trace.get_current_span() is caller  # between steps, the caller's context
        assert trace.get_current_span() is caller

        async def consume() -> None:
            async for _ in agen("c"):
                assert trace.get_current_span() is caller

        asyncio.run(consume())
        with pytest.raises(ZeroDivisionError):
            monitor(**telemetry.options())(lambda model: 1 / 0)("d")
        assert trace.get_current_span() is caller

    spans = {s.name: s for s in telemetry.spans()}
    assert inside[0].get_span_context() == spans["chat a"].get_span_context()
    assert inside[1].get_span_context() == inside[2].get_span_context() == spans["chat b"].get_span_context()
    assert inside[3].get_span_context() == spans["chat c"].get_span_context()
    for name in ("chat a", "chat b", "chat c", "chat d"):
        parent = spans[name].parent
        assert parent is not None
        assert parent.span_id == caller.get_span_context().span_id


def test_nested_call_is_counted_once(telemetry: Any) -> None:
    opts = telemetry.options()

    @monitor(provider="openai", **opts)
    def inner(model: str) -> str:
        return "x"

    @monitor(provider="myapp", **opts)
    def outer(model: str) -> str:
        return inner("gpt-4o")

    outer("app-model")
    assert [str(r.key) for r in telemetry.recorder.records] == ["openai/gpt-4o@direct"]
    assert sorted(s.name for s in telemetry.spans()) == ["chat app-model", "chat gpt-4o"]
    assert len(telemetry.metric_points("gen_ai.client.operation.duration")) == 1


def test_health_is_recorded_when_spans_are_not_sampled(telemetry: Any) -> None:
    exporter = InMemorySpanExporter()
    unsampled = TracerProvider(sampler=ALWAYS_OFF)
    unsampled.add_span_processor(SimpleSpanProcessor(exporter))

    @monitor(registry=telemetry.recorder, tracer_provider=unsampled, meter_provider=telemetry.meter_provider)
    def chat(model: str) -> None:
        raise APIConnectionError("down")

    @monitor(registry=telemetry.recorder, tracer_provider=unsampled, meter_provider=telemetry.meter_provider)
    def stream(model: str) -> Iterator[int]:
        yield 1

    with pytest.raises(APIConnectionError):
        chat("m")
    assert list(stream("m")) == [1]
    assert exporter.get_finished_spans() == ()
    assert telemetry.recorder.outcomes == [Outcome.FAILURE, Outcome.SUCCESS]
    assert len(telemetry.metric_points("gen_ai.client.operation.duration")) == 2
    unsampled.shutdown()


def test_generator_records_ttfc_and_stream_chunks(telemetry: Any) -> None:
    chunks = [
        {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-x", "choices": [{"delta": {}}]},
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": "gpt-4o-x",
            "choices": [{"finish_reason": "stop"}],
        },
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": {"prompt_tokens": 2, "completion_tokens": 3},
        },
    ]

    @monitor(**telemetry.options())
    def stream(model: str) -> Iterator[dict[str, Any]]:
        yield from chunks

    assert list(stream("gpt-4o")) == chunks
    (span,) = telemetry.spans()
    assert span.attributes is not None
    assert span.attributes["gen_ai.response.model"] == "gpt-4o-x"
    assert span.attributes["gen_ai.usage.output_tokens"] == 3
    assert span.attributes["gen_ai.request.stream"] is True
    assert len(telemetry.metric_points("gen_ai.client.operation.time_to_first_chunk")) == 1


def test_generator_failure_and_early_close(telemetry: Any) -> None:
    @monitor(**telemetry.options())
    def stream(model: str) -> Iterator[int]:
        yield 1
        raise APIConnectionError("dropped")

    gen = stream("m")
    assert next(gen) == 1
    with pytest.raises(APIConnectionError):
        next(gen)
    gen = stream("m")
    next(gen)
    gen.close()
    gen = stream("m")
    next(gen)
    del gen  # garbage-collected unfinished: closed by Python
    records = telemetry.recorder.records
    assert [(r.outcome.value, r.kwargs["error_type"]) for r in records] == [
        ("failure", "connection_error"),
        ("neutral", "cancelled"),
        ("neutral", "cancelled"),
    ]
