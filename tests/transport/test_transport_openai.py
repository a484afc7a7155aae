"""The real openai SDK (httpx2) through instrument_client, against the simulated provider."""

from __future__ import annotations

import socket
from typing import Any

import openai
import pytest
from kit import API_KEY, Telemetry

from otel_model_health.instrument.transport import instrument_client
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration  # the simulated provider on 127.0.0.1

MESSAGES: Any = [{"role": "user", "content": "Say hello"}]


def make_client(sim: SimulatedProvider, telemetry: Telemetry | None, **kwargs: Any) -> openai.OpenAI:
    http_client = openai.DefaultHttpxClient()
    if telemetry is not None:
        instrument_client(http_client, **telemetry.options())
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=sim.openai_base_url, api_key=API_KEY, http_client=http_client, **kwargs)


def make_async_client(
    sim: SimulatedProvider, telemetry: Telemetry | None, **kwargs: Any
) -> openai.AsyncOpenAI:
    http_client = openai.DefaultAsyncHttpxClient()
    if telemetry is not None:
        instrument_client(http_client, **telemetry.options())
    kwargs.setdefault("max_retries", 0)
    return openai.AsyncOpenAI(
        base_url=sim.openai_base_url, api_key=API_KEY, http_client=http_client, **kwargs
    )


def _completion_view(completion: Any) -> Any:
    data = completion.model_dump()
    data.pop("id")
    data.pop("created")
    return data


def _chunk_view(chunks: list[Any]) -> list[Any]:
    return [
        ([c.delta.content for c in chunk.choices], [c.finish_reason for c in chunk.choices], chunk.usage)
        for chunk in chunks
    ]


def test_sync_results_identical_and_spans_right(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    plain = make_client(sim, None)
    instrumented = make_client(sim, telemetry)
    kwargs: Any = {"model": "gpt-4o", "messages": MESSAGES}
    assert _completion_view(instrumented.chat.completions.create(**kwargs)) == _completion_view(
        plain.chat.completions.create(**kwargs)
    )
    stream_kwargs: Any = {**kwargs, "stream": True, "stream_options": {"include_usage": True}}
    ours = _chunk_view(list(instrumented.chat.completions.create(**stream_kwargs)))
    theirs = _chunk_view(list(plain.chat.completions.create(**stream_kwargs)))
    assert ours == theirs and len(ours) > 3

    spans = telemetry.model_spans()
    assert [s.name for s in spans] == ["chat gpt-4o", "chat gpt-4o"]
    plain_span, stream_span = (dict(s.attributes or {}) for s in spans)
    for attrs in (plain_span, stream_span):
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["model_health.gateway"] == "self_hosted"
        assert attrs["gen_ai.response.model"] == "gpt-4o"
        assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
        assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
        assert attrs["http.response.status_code"] == 200
        assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == sim.port
    assert plain_span["gen_ai.request.stream"] is False and stream_span["gen_ai.request.stream"] is True
    assert telemetry.recorder.verdicts == [(Outcome.SUCCESS, None)] * 2

    metrics = telemetry.metrics()
    assert sum(p.count for p in metrics["gen_ai.client.operation.duration"]) == 2
    assert sum(p.count for p in metrics["gen_ai.client.operation.time_to_first_chunk"]) == 1
    token_types = {p.attributes["gen_ai.token.type"] for p in metrics["gen_ai.client.token.usage"]}
    assert token_types == {"input", "output"}


async def test_async_results_identical(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    plain = make_async_client(sim, None)
    instrumented = make_async_client(sim, telemetry)
    kwargs: Any = {"model": "gpt-4o-mini", "messages": MESSAGES}
    assert _completion_view(await instrumented.chat.completions.create(**kwargs)) == _completion_view(
        await plain.chat.completions.create(**kwargs)
    )
    stream_kwargs: Any = {**kwargs, "stream": True, "stream_options": {"include_usage": True}}
    ours = _chunk_view([c async for c in await instrumented.chat.completions.create(**stream_kwargs)])
    theirs = _chunk_view([c async for c in await plain.chat.completions.create(**stream_kwargs)])
    assert ours == theirs
    embedding = await instrumented.embeddings.create(model="text-embedding-3-small", input="hi")
    assert embedding.data
    await plain.close()
    await instrumented.close()
    spans = telemetry.model_spans()
    assert [s.name for s in spans] == [
        "chat gpt-4o-mini",
        "chat gpt-4o-mini",
        "embeddings text-embedding-3-small",
    ]
    assert telemetry.recorder.verdicts == [(Outcome.SUCCESS, None)] * 3


def test_sdk_retry_after_503_is_one_failure_and_one_success(
    sim: SimulatedProvider, telemetry: Telemetry
) -> None:
    sim.script("gpt-4o", Fault.status(503), times=1)
    client = make_client(sim, telemetry, max_retries=1)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert telemetry.recorder.verdicts == [(Outcome.FAILURE, "503"), (Outcome.SUCCESS, None)]
    first, second = (dict(s.attributes or {}) for s in telemetry.model_spans())
    assert first["error.type"] == "503" and "http.request.resend_count" not in first
    assert second["http.request.resend_count"] == 1


@pytest.mark.parametrize(
    ("fault", "expected", "status"),
    [
        (Fault.status(500), (Outcome.FAILURE, "500"), 500),
        (Fault.status(503), (Outcome.FAILURE, "503"), 503),
        (Fault.overloaded(), (Outcome.FAILURE, "529"), 529),
        # never seen to succeed: a made-up name, the caller's mistake (docs/outcomes.md)
        (Fault.model_not_found(), (Outcome.UNKNOWN_MODEL, "model_not_found"), 404),
        (Fault.status(400), (Outcome.NEUTRAL, "400"), 400),
    ],
)
def test_error_statuses(
    sim: SimulatedProvider, telemetry: Telemetry, fault: Fault, expected: Any, status: int
) -> None:
    sim.script("gpt-4o", fault, times=1)
    with pytest.raises(openai.APIStatusError):
        make_client(sim, telemetry).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert telemetry.recorder.verdicts == [expected]
    record = telemetry.recorder.records[0]
    assert record.kwargs["status_code"] == status
    assert record.kwargs["error_message"]  # the provider's message, scrubbed


def test_404_of_a_model_that_worked_is_the_models_failure(
    sim: SimulatedProvider, telemetry: Telemetry
) -> None:
    client = make_client(sim, telemetry)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    sim.script("gpt-4o", Fault.model_not_found(), times=1)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert telemetry.recorder.verdicts == [(Outcome.SUCCESS, None), (Outcome.FAILURE, "model_not_found")]
    assert telemetry.model_spans()[1].attributes["model_health.outcome"] == "failure"


def test_rate_limit_passes_retry_after(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    sim.script("gpt-4o", Fault.rate_limit(7.0), times=1)
    with pytest.raises(openai.RateLimitError):
        make_client(sim, telemetry).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    record = telemetry.recorder.records[0]
    assert (record.outcome, record.error_type, record.kwargs["retry_after_s"]) == (
        Outcome.RATE_LIMITED,
        "429",
        7.0,
    )


def test_timeout(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    sim.script("gpt-4o", Fault.hang(), times=1)
    client = make_client(sim, telemetry, timeout=0.2)
    try:
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    finally:
        sim.release_hangs()
    assert telemetry.recorder.verdicts == [(Outcome.FAILURE, "timeout")]
    span = telemetry.model_spans()[0]
    assert span.events and span.events[0].name == "exception"


def test_connection_refused(telemetry: Telemetry) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    http_client = instrument_client(openai.DefaultHttpxClient(), **telemetry.options())
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY, http_client=http_client, max_retries=0
    )
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert telemetry.recorder.verdicts == [(Outcome.FAILURE, "connection_error")]


def _stream(sim: SimulatedProvider, telemetry: Telemetry) -> list[Any]:
    client = make_client(sim, telemetry)
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    return list(stream)


def test_reset_mid_stream(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    sim.script("gpt-4o", Fault.reset(after_chunks=2), times=1)
    with pytest.raises(openai.APIConnectionError):
        _stream(sim, telemetry)
    assert telemetry.recorder.verdicts == [(Outcome.FAILURE, "connection_error")]


def test_clean_end_without_done(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    sim.script("gpt-4o", Fault.truncate(after_chunks=2), times=1)
    chunks = _stream(sim, telemetry)
    assert len(chunks) >= 2  # the SDK itself does not notice
    assert telemetry.recorder.verdicts == [(Outcome.FAILURE, "incomplete_stream")]


def test_error_event_in_stream(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    sim.script("gpt-4o", Fault.stream_error(after_chunks=1, error_type="server_error"), times=1)
    with pytest.raises(openai.APIError):
        _stream(sim, telemetry)
    assert telemetry.recorder.verdicts == [(Outcome.FAILURE, "server_error")]
    assert telemetry.metrics()["gen_ai.client.operation.time_to_first_chunk"]


def test_malformed_json_body(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    sim.script("gpt-4o", Fault.malformed_json(), times=1)
    with pytest.raises(Exception):  # noqa: B017 - the SDK's own parse error
        make_client(sim, telemetry).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert telemetry.recorder.verdicts == [(Outcome.FAILURE, "malformed_response")]


def test_gzip_body_is_read(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    sim.script("gpt-4o", Fault.gzip(), times=1)
    completion = make_client(sim, telemetry).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert completion.usage is not None
    assert sim.requests[-1].headers.get("accept-encoding")
    attrs = dict(telemetry.model_spans()[0].attributes or {})
    assert attrs["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert attrs["gen_ai.response.id"] == completion.id


def test_early_close_is_cancelled(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    client = make_client(sim, telemetry)
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    assert telemetry.recorder.verdicts == [(Outcome.NEUTRAL, "cancelled")]


class CallersOwnError(ValueError):
    """A ValueError of the caller's own code: the kind of error the SDK raises when it cannot decode."""


def test_callers_own_error_inside_the_stream_is_a_cancellation(
    sim: SimulatedProvider, telemetry: Telemetry
) -> None:
    """Only a decoding error raised in the frame that closes the response is the model's failure; a
    caller's exception leaving its own `with` block early is the caller giving up."""
    client = make_client(sim, telemetry)
    with (
        pytest.raises(CallersOwnError),
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as stream,
    ):
        for _chunk in stream:
            raise CallersOwnError("my own parsing failed")
    assert telemetry.recorder.verdicts == [(Outcome.NEUTRAL, "cancelled")]


async def test_callers_own_error_inside_an_async_stream_is_a_cancellation(
    sim: SimulatedProvider, telemetry: Telemetry
) -> None:
    client = make_async_client(sim, telemetry)
    with pytest.raises(CallersOwnError):
        async with await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True
        ) as stream:
            async for _chunk in stream:
                raise CallersOwnError("my own parsing failed")
    assert telemetry.recorder.verdicts == [(Outcome.NEUTRAL, "cancelled")]
