"""The real openai and anthropic SDKs, decorated, against the simulated provider on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
import wrapt

from otel_model_health.instrument.decorators import monitor
from otel_model_health.instrument.transport import instrument_client
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration


@pytest.fixture
def provider() -> Iterator[SimulatedProvider]:
    with SimulatedProvider(stream_chunks=3) as sim:
        yield sim


def _openai(provider: SimulatedProvider, **kwargs: Any) -> openai.OpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=provider.openai_base_url, api_key="sk-test", **kwargs)


def _anthropic(provider: SimulatedProvider, **kwargs: Any) -> anthropic.Anthropic:
    kwargs.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=provider.anthropic_base_url, api_key="sk-ant-test", **kwargs)


def test_openai_create_and_stream(provider: SimulatedProvider, telemetry: Any) -> None:
    with _openai(provider) as client:
        create = monitor(**telemetry.options())(client.chat.completions.create)
        completion = create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert completion.choices[0].message.content
        stream = create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True)
        assert isinstance(stream, wrapt.ObjectProxy)
        with stream as entered:
            assert entered is stream
            chunks = list(entered)
        assert chunks and all(c.object == "chat.completion.chunk" for c in chunks)
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS, Outcome.SUCCESS]
    assert {str(r.key) for r in telemetry.recorder.records} == {"openai/gpt-4o@direct"}
    plain, streamed = telemetry.spans()
    assert plain.attributes is not None
    assert streamed.attributes is not None
    assert plain.attributes["gen_ai.usage.output_tokens"] > 0
    assert streamed.attributes["gen_ai.request.stream"] is True
    assert streamed.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert len(telemetry.metric_points("gen_ai.client.operation.time_to_first_chunk")) == 1


async def test_openai_async_stream(provider: SimulatedProvider, telemetry: Any) -> None:
    client = openai.AsyncOpenAI(base_url=provider.openai_base_url, api_key="sk-test", max_retries=0)
    create = monitor(**telemetry.options())(client.chat.completions.create)
    stream = await create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
    async with stream:
        chunks = [chunk async for chunk in stream]
    await client.close()
    assert chunks
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS]


def test_openai_errors_map_to_outcomes(provider: SimulatedProvider, telemetry: Any) -> None:
    provider.script("gpt-4o", Fault.status(503), times=1)
    provider.script("gpt-4o", Fault.rate_limit(retry_after=3), times=1)
    provider.script("gpt-4o", Fault.reset(after_chunks=1), times=1)
    with _openai(provider) as client:
        create = monitor(**telemetry.options())(client.chat.completions.create)
        messages = [{"role": "user", "content": "hi"}]
        with pytest.raises(openai.InternalServerError):
            create(model="gpt-4o", messages=messages)
        with pytest.raises(openai.RateLimitError):
            create(model="gpt-4o", messages=messages)
        stream = create(model="gpt-4o", messages=messages, stream=True)
        with pytest.raises(openai.APIConnectionError), stream:
            list(stream)
    records = telemetry.recorder.records
    assert [(r.outcome, r.kwargs["error_type"]) for r in records] == [
        (Outcome.FAILURE, "503"),
        (Outcome.RATE_LIMITED, "429"),
        (Outcome.FAILURE, "connection_error"),
    ]
    assert records[1].kwargs["retry_after_s"] == 3.0


def test_anthropic_create_and_message_stream(provider: SimulatedProvider, telemetry: Any) -> None:
    with _anthropic(provider) as client:
        create = monitor(**telemetry.options())(client.messages.create)
        stream_call = monitor(**telemetry.options())(client.messages.stream)
        message = create(
            model="claude-test-model", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content
        with stream_call(
            model="claude-test-model", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            texts = list(stream.text_stream)
            final = stream.get_final_message()
        assert "".join(texts) == final.content[0].text
        with stream_call(
            model="claude-test-small", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
        ) as s:
            events = list(s)
        assert events[-1].type == "message_stop"
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS] * 3
    assert [r.key.provider for r in telemetry.recorder.records] == ["anthropic"] * 3
    spans = telemetry.spans()
    ours = [s for s in spans if s.attributes and s.attributes.get("model_health.operation")]
    assert len(ours) == 3
    streamed = ours[1].attributes
    assert streamed is not None
    assert streamed["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert streamed["gen_ai.usage.output_tokens"] > 0


def test_anthropic_overloaded(provider: SimulatedProvider, telemetry: Any) -> None:
    provider.script("claude-test-model", Fault.overloaded(), times=1)
    with _anthropic(provider) as client:
        create = monitor(**telemetry.options())(client.messages.create)
        with pytest.raises(anthropic.APIStatusError):
            create(model="claude-test-model", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    (rec,) = telemetry.recorder.records
    assert (rec.outcome, rec.kwargs["error_type"]) == (Outcome.FAILURE, "529")


def test_retry_with_transport_counts_each_attempt_once(provider: SimulatedProvider, telemetry: Any) -> None:
    provider.script("gpt-4o", Fault.status(503, retry_after=0.01), times=1)
    http_client = instrument_client(openai.DefaultHttpxClient(), **telemetry.options())
    with _openai(provider, max_retries=2, http_client=http_client) as client:
        create = monitor(**telemetry.options())(client.chat.completions.create)
        completion = create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices
    # The transport saw two attempts; the decorator around them is a span, not a third outcome.
    assert [(r.outcome, r.kwargs["error_type"]) for r in telemetry.recorder.records] == [
        (Outcome.FAILURE, "503"),
        (Outcome.SUCCESS, None),
    ]
    spans = telemetry.spans()
    decorator_span = spans[-1]
    assert decorator_span.name == "chat gpt-4o"
    assert decorator_span.attributes is not None
    assert decorator_span.attributes["model_health.outcome"] == "success"
    attempts = [s for s in spans[:-1] if s.parent is not None]
    assert len(attempts) == 2
    assert all(s.parent is not None and s.parent.span_id == decorator_span.context.span_id for s in attempts)
