"""Streams returned by a decorated call: proxies, managers, SDK-style final methods, abandonment."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pydantic
import pytest
import wrapt

from otel_model_health.instrument.decorators import monitor
from otel_model_health.instrument.decorators.call_results import ResultKind, result_kind
from otel_model_health.outcomes import Outcome

ANTHROPIC_EVENTS = [
    {"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 5}}},
    {"type": "content_block_delta", "delta": {"text": "hi"}},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}},
    {"type": "message_stop"},
]


class Stream:
    """Shaped like openai.Stream: iterator, context manager, close(), response."""

    def __init__(self, events: list[Any], fail_at: int | None = None) -> None:
        self._events = events
        self._index = 0
        self._fail_at = fail_at
        self.closed = False
        self.response = "the-http-response"

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self._index == self._fail_at:
            raise ConnectionError("reset")
        if self._index >= len(self._events):
            raise StopIteration
        self._index += 1
        return self._events[self._index - 1]

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.closed = True


class MessageStream(Stream):
    """Shaped like anthropic's MessageStream: consumes itself in until_done / get_final_*."""

    def __init__(self, events: list[Any]) -> None:
        super().__init__(events)
        self.text_stream = self._texts()

    def _texts(self) -> Iterator[str]:
        for event in self:  # the real stream, not the proxy
            if event["type"] == "content_block_delta":
                yield event["delta"]["text"]

    def until_done(self) -> None:
        for _ in self:
            pass

    def get_final_message(self) -> dict[str, Any]:
        self.until_done()
        return self.current_message_snapshot

    @property
    def current_message_snapshot(self) -> dict[str, Any]:
        return {
            "id": "msg_1",
            "model": "claude-x",
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 5, "output_tokens": 9},
        }


class MessageStreamManager:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.stream: MessageStream | None = None

    def __enter__(self) -> MessageStream:
        if self.fail:
            raise ConnectionError("refused")
        self.stream = MessageStream(list(ANTHROPIC_EVENTS))
        return self.stream

    def __exit__(self, *exc: Any) -> None:
        assert self.stream is not None
        self.stream.close()


class BareAsyncIterator:
    """An async iterator with nothing else: no close, no ``async with``."""

    def __init__(self, events: list[Any]) -> None:
        self._events = iter(events)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._events)
        except StopIteration:
            raise StopAsyncIteration from None


class AsyncStream(BareAsyncIterator):
    def __init__(self, events: list[Any]) -> None:
        super().__init__(events)
        self.closed = False

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        self.closed = True


class ChatCompletion(pydantic.BaseModel):
    id: str
    model: str


def test_result_kind_detection() -> None:
    assert result_kind({"a": 1}) is ResultKind.VALUE
    assert result_kind([1, 2]) is ResultKind.VALUE
    assert result_kind("text") is ResultKind.VALUE
    assert result_kind(ChatCompletion(id="x", model="m")) is ResultKind.VALUE  # iterable over fields
    assert result_kind(None) is ResultKind.VALUE
    assert result_kind(Stream([])) is ResultKind.SYNC_STREAM
    assert result_kind(iter([1])) is ResultKind.SYNC_STREAM
    assert result_kind(AsyncStream([])) is ResultKind.ASYNC_STREAM
    assert result_kind(MessageStream([])) is ResultKind.SYNC_MANAGED
    assert result_kind(MessageStreamManager()) is ResultKind.SYNC_MANAGER


def test_pydantic_response_is_read_not_proxied(telemetry: Any) -> None:
    completion = ChatCompletion(id="cmpl-9", model="gpt-4o-x")
    result = monitor(**telemetry.options())(lambda model: completion)("gpt-4o")
    assert result is completion
    (span,) = telemetry.spans()
    assert span.attributes is not None
    assert span.attributes["gen_ai.response.id"] == "cmpl-9"


def test_sdk_stream_iteration_with_and_close(telemetry: Any) -> None:
    inner = Stream(list(ANTHROPIC_EVENTS))
    stream = monitor(**telemetry.options())(lambda model: inner)("claude")
    assert isinstance(stream, wrapt.ObjectProxy)
    assert isinstance(stream, Stream)  # proxies report the wrapped class
    assert stream.response == "the-http-response"
    assert telemetry.spans() == ()  # the call is not over before the stream is
    with stream as entered:
        assert entered is stream
        assert list(entered) == ANTHROPIC_EVENTS
    assert inner.closed
    (span,) = telemetry.spans()
    assert span.attributes is not None
    assert span.attributes["gen_ai.response.model"] == "claude-x"
    assert span.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert span.attributes["gen_ai.usage.input_tokens"] == 5
    assert span.attributes["gen_ai.usage.output_tokens"] == 9
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS]
    assert len(telemetry.metric_points("gen_ai.client.operation.time_to_first_chunk")) == 1


def test_stream_error_is_the_outcome_and_reraised(telemetry: Any) -> None:
    stream = monitor(**telemetry.options())(lambda model: Stream(list(ANTHROPIC_EVENTS), fail_at=1))("c")
    assert next(stream) == ANTHROPIC_EVENTS[0]
    with pytest.raises(ConnectionError, match="reset"):
        next(stream)
    (rec,) = telemetry.recorder.records
    assert (rec.outcome, rec.kwargs["error_type"]) == (Outcome.FAILURE, "connection_error")


def test_closed_early_is_cancelled(telemetry: Any) -> None:
    stream = monitor(**telemetry.options())(lambda model: Stream(list(ANTHROPIC_EVENTS)))("c")
    next(stream)
    stream.close()
    stream.close()
    (rec,) = telemetry.recorder.records
    assert (rec.outcome, rec.kwargs["error_type"]) == (Outcome.NEUTRAL, "cancelled")


def test_closed_after_finish_reason_is_complete(telemetry: Any) -> None:
    stream = monitor(**telemetry.options())(lambda model: Stream(list(ANTHROPIC_EVENTS)))("c")
    for event in stream:
        if event["type"] == "message_delta":
            break
    stream.close()
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS]


def test_garbage_collected_unfinished_stream_is_cancelled_once(telemetry: Any) -> None:
    stream = monitor(**telemetry.options())(lambda model: Stream(list(ANTHROPIC_EVENTS)))("c")
    next(stream)
    del stream
    gc.collect()
    (rec,) = telemetry.recorder.records
    assert (rec.outcome, rec.kwargs["error_type"]) == (Outcome.NEUTRAL, "cancelled")
    (span,) = telemetry.spans()
    assert span.attributes is not None
    assert span.attributes["model_health.outcome"] == "neutral"


def test_exhausted_stream_collected_records_nothing_more(telemetry: Any) -> None:
    stream = monitor(**telemetry.options())(lambda model: Stream([{"type": "message_stop"}]))("c")
    list(stream)
    del stream
    gc.collect()
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS]


def test_message_stream_manager(telemetry: Any) -> None:
    stream_call = monitor(**telemetry.options())(lambda model: MessageStreamManager())
    with stream_call("claude") as stream:
        assert isinstance(stream, wrapt.ObjectProxy)
        assert list(stream.text_stream) == ["hi"]
    (span,) = telemetry.spans()
    assert span.attributes is not None
    assert span.attributes["gen_ai.response.model"] == "claude-x"
    assert span.attributes["gen_ai.usage.output_tokens"] == 9
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS]

    with stream_call("claude") as stream:
        message = stream.get_final_message()
    assert message["id"] == "msg_1"
    with stream_call("claude") as stream:
        assert stream.until_done() is None
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS] * 3

    with (
        pytest.raises(ConnectionError),
        monitor(**telemetry.options())(lambda model: MessageStreamManager(fail=True))("c"),
    ):
        pass
    assert telemetry.recorder.records[-1].kwargs["error_type"] == "connection_error"

    with stream_call("claude") as stream:
        next(stream)  # the caller leaves the block after one event
    assert telemetry.recorder.records[-1].kwargs["error_type"] == "cancelled"


def test_manager_never_entered_is_cancelled_on_collection(telemetry: Any) -> None:
    manager = monitor(**telemetry.options())(lambda model: MessageStreamManager())("c")
    del manager
    gc.collect()
    assert telemetry.recorder.outcomes == [Outcome.NEUTRAL]


async def test_async_stream_proxy(telemetry: Any) -> None:
    @monitor(**telemetry.options())
    async def create(model: str) -> AsyncStream:
        return AsyncStream(list(ANTHROPIC_EVENTS))

    stream = await create("claude")
    async with stream as entered:
        assert entered is stream
        assert [event async for event in entered] == ANTHROPIC_EVENTS
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS]

    stream = await create("claude")
    await stream.__anext__()
    await stream.close()
    assert telemetry.recorder.records[-1].kwargs["error_type"] == "cancelled"


async def test_coroutine_returned_by_a_plain_function(telemetry: Any) -> None:
    async def body(model: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"model": "m-resp"}

    def start(model: str) -> Any:  # a plain function handing back a coroutine
        return body(model)

    call = monitor(**telemetry.options())(start)
    result = await call("m")
    assert result == {"model": "m-resp"}
    (span,) = telemetry.spans()
    assert span.attributes is not None
    assert span.attributes["gen_ai.response.model"] == "m-resp"


async def test_coroutine_of_a_plain_function_run_as_a_task(
    telemetry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # asyncio.gather / create_task drive a non-native coroutine through send()/throw(), never through
    # __await__: the proxy must observe that path too (it used to record both calls as "cancelled").
    class ServerError(Exception):
        status_code = 503

    async def body(model: str, fail: bool) -> dict[str, Any]:
        await asyncio.sleep(0)
        if fail:
            raise ServerError("overloaded")
        return {"model": "m-resp"}

    def start(model: str, fail: bool = False) -> Any:
        return body(model, fail)

    call = monitor(**telemetry.options())(start)
    ok, failed = await asyncio.gather(call("m"), call("m", True), return_exceptions=True)
    assert ok == {"model": "m-resp"}
    assert isinstance(failed, ServerError)
    assert await asyncio.create_task(call("m")) == {"model": "m-resp"}
    gc.collect()
    outcomes = [(r.outcome, r.kwargs["error_type"]) for r in telemetry.recorder.records]
    assert outcomes == [(Outcome.SUCCESS, None), (Outcome.FAILURE, "503"), (Outcome.SUCCESS, None)]
    assert "Failed to detach context" not in caplog.text


class BareIterator:
    """An iterator with nothing else: no close, no ``with``, no final methods."""

    def __init__(self, events: list[Any]) -> None:
        self._events = iter(events)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._events)


# wrapt's ObjectProxy itself always has the four context-manager methods (forwarding them); ours, and
# the methods we observe, exist only when the stream has them.
SYNC_METHODS = ("close", "aclose", "__enter__", "__exit__")
ASYNC_METHODS = ("close", "aclose", "__aenter__", "__aexit__")
FINAL_METHODS = ("until_done", "get_final_message", "get_final_text", "get_final_completion")


def test_proxy_has_only_the_methods_the_stream_has(telemetry: Any) -> None:
    for inner in (BareIterator(list(ANTHROPIC_EVENTS)), Stream(list(ANTHROPIC_EVENTS))):
        stream = monitor(**telemetry.options())(lambda model, inner=inner: inner)("c")
        assert isinstance(stream, wrapt.ObjectProxy)
        for name in SYNC_METHODS:
            assert hasattr(stream, name) is hasattr(inner, name), name
        stream.close() if hasattr(inner, "close") else list(stream)
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS, Outcome.NEUTRAL]
    bare = monitor(**telemetry.options())(lambda model: BareIterator(list(ANTHROPIC_EVENTS)))("c")
    with pytest.raises(AttributeError):
        bare.close()
    # Asking for a method the stream lacks ends nothing: the call is measured when the stream ends.
    assert len(telemetry.recorder.outcomes) == 2
    assert list(bare) == ANTHROPIC_EVENTS
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS, Outcome.NEUTRAL, Outcome.SUCCESS]

    managed_inner = MessageStream(list(ANTHROPIC_EVENTS))
    managed = monitor(**telemetry.options())(lambda model: managed_inner)("c")
    for name in FINAL_METHODS:
        assert hasattr(managed, name) is hasattr(managed_inner, name), name
    assert managed.get_final_message()["model"] == "claude-x"


def test_with_on_a_proxy_of_a_stream_without_it_fails_as_the_stream_would(telemetry: Any) -> None:
    stream = monitor(**telemetry.options())(lambda model: BareIterator(list(ANTHROPIC_EVENTS)))("c")
    with pytest.raises(AttributeError):  # the stream itself would raise a TypeError: see decorators.md
        with stream:
            pass
    assert list(stream) == ANTHROPIC_EVENTS
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS]


async def test_async_proxy_has_only_the_methods_the_stream_has(telemetry: Any) -> None:
    for inner in (BareAsyncIterator(list(ANTHROPIC_EVENTS)), AsyncStream(list(ANTHROPIC_EVENTS))):

        @monitor(**telemetry.options())
        async def create(model: str, inner: Any = inner) -> Any:
            return inner

        stream = await create("c")
        for name in ASYNC_METHODS:
            assert hasattr(stream, name) is hasattr(inner, name), name
        assert [event async for event in stream] == ANTHROPIC_EVENTS
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS, Outcome.SUCCESS]
