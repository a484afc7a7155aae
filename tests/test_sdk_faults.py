"""How each simulated fault looks to the real openai and anthropic SDKs (sync and async, streaming and not).

These tests pin the SDKs' observable behaviour that the instrumentation has to classify; the table in
docs/simulated-provider.md is written from them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration  # the simulated provider on 127.0.0.1

CHAT: Any = [{"role": "user", "content": "Say something."}]
OPENAI_MODEL = "gpt-4o"
ANTHROPIC_MODEL = "claude-haiku-4-5"
HANG_TIMEOUT = 0.1  # for the hang faults: they never answer
TIMEOUT = 10.0  # everything else answers at once; generous so a loaded machine cannot flake


@pytest.fixture(scope="module")
def shared_provider() -> Iterator[SimulatedProvider]:
    with SimulatedProvider() as p:
        yield p
    assert not [t for t in threading.enumerate() if t.name.startswith("simulated-provider")]


@pytest.fixture
def provider(shared_provider: SimulatedProvider) -> Iterator[SimulatedProvider]:
    """One server for the module (fast); each test starts with no faults and an empty log."""
    yield shared_provider
    shared_provider.clear_faults()
    shared_provider.release_hangs()
    shared_provider.clear_requests()
    shared_provider.stream_chunks = 5


# --- calling the SDKs ---------------------------------------------------------------------------------------


def openai_call(provider: SimulatedProvider, *, stream: bool, timeout: float = TIMEOUT) -> Any:
    with openai.OpenAI(
        base_url=provider.openai_base_url, api_key="sk-test", max_retries=0, timeout=timeout
    ) as client:
        if not stream:
            return client.chat.completions.create(model=OPENAI_MODEL, messages=CHAT)
        chunks = client.chat.completions.create(
            model=OPENAI_MODEL,
            messages=CHAT,
            stream=True,
            stream_options={"include_usage": True},
        )
        return list(chunks)


async def openai_call_async(provider: SimulatedProvider, *, stream: bool, timeout: float = TIMEOUT) -> Any:
    async with openai.AsyncOpenAI(
        base_url=provider.openai_base_url, api_key="sk-test", max_retries=0, timeout=timeout
    ) as client:
        if not stream:
            return await client.chat.completions.create(model=OPENAI_MODEL, messages=CHAT)
        chunks = await client.chat.completions.create(
            model=OPENAI_MODEL,
            messages=CHAT,
            stream=True,
            stream_options={"include_usage": True},
        )
        return [chunk async for chunk in chunks]


def anthropic_call(provider: SimulatedProvider, *, stream: bool, timeout: float = TIMEOUT) -> Any:
    with anthropic.Anthropic(
        base_url=provider.anthropic_base_url, api_key="sk-ant-test", max_retries=0, timeout=timeout
    ) as client:
        if not stream:
            return client.messages.create(model=ANTHROPIC_MODEL, max_tokens=100, messages=CHAT)
        events = client.messages.create(
            model=ANTHROPIC_MODEL,
            max_tokens=100,
            messages=CHAT,
            stream=True,
        )
        return list(events)


async def anthropic_call_async(provider: SimulatedProvider, *, stream: bool, timeout: float = TIMEOUT) -> Any:
    async with anthropic.AsyncAnthropic(
        base_url=provider.anthropic_base_url, api_key="sk-ant-test", max_retries=0, timeout=timeout
    ) as client:
        if not stream:
            return await client.messages.create(model=ANTHROPIC_MODEL, max_tokens=100, messages=CHAT)
        events = await client.messages.create(
            model=ANTHROPIC_MODEL,
            max_tokens=100,
            messages=CHAT,
            stream=True,
        )
        return [event async for event in events]


async def call(
    provider: SimulatedProvider, sdk: str, mode: str, *, stream: bool, timeout: float = TIMEOUT
) -> Any:
    if sdk == "openai":
        if mode == "sync":
            return openai_call(provider, stream=stream, timeout=timeout)
        return await openai_call_async(provider, stream=stream, timeout=timeout)
    if mode == "sync":
        return anthropic_call(provider, stream=stream, timeout=timeout)
    return await anthropic_call_async(provider, stream=stream, timeout=timeout)


MODES = ["sync", "async"]

# --- faults that raise: (fault, sdk, stream) -> the exact exception class -----------------------------------

RAISES: list[tuple[str, Fault, str, bool, type[BaseException]]] = [
    ("429", Fault.rate_limit(2), "openai", False, openai.RateLimitError),
    ("429", Fault.rate_limit(2), "openai", True, openai.RateLimitError),
    ("429", Fault.rate_limit(2), "anthropic", False, anthropic.RateLimitError),
    ("429", Fault.rate_limit(2), "anthropic", True, anthropic.RateLimitError),
    ("500", Fault.status(500), "openai", False, openai.InternalServerError),
    ("500", Fault.status(500), "anthropic", True, anthropic.InternalServerError),
    ("503", Fault.status(503), "openai", False, openai.InternalServerError),
    ("503", Fault.status(503), "openai", True, openai.InternalServerError),
    ("503", Fault.status(503), "anthropic", False, anthropic.ServiceUnavailableError),
    ("529", Fault.status(529), "openai", False, openai.InternalServerError),
    ("529", Fault.overloaded(), "anthropic", False, anthropic.OverloadedError),
    ("529", Fault.overloaded(), "anthropic", True, anthropic.OverloadedError),
    ("404", Fault.model_not_found(), "openai", False, openai.NotFoundError),
    ("404", Fault.model_not_found(), "anthropic", True, anthropic.NotFoundError),
    ("hang", Fault.hang(), "openai", False, openai.APITimeoutError),
    ("hang", Fault.hang(), "openai", True, openai.APITimeoutError),
    ("hang", Fault.hang(), "anthropic", False, anthropic.APITimeoutError),
    ("hang", Fault.hang(), "anthropic", True, anthropic.APITimeoutError),
    # A stream that stalls after its headers: openai wraps the read timeout, anthropic does not.
    ("hang-mid", Fault.hang(after_chunks=2), "openai", True, openai.APITimeoutError),
    ("hang-mid", Fault.hang(after_chunks=2), "anthropic", True, httpx2.ReadTimeout),
    ("hang-mid", Fault.hang(after_chunks=2), "anthropic", False, anthropic.APITimeoutError),
    ("malformed", Fault.malformed_json(), "openai", False, json.JSONDecodeError),
    ("malformed", Fault.malformed_json(), "openai", True, json.JSONDecodeError),
    ("malformed", Fault.malformed_json(), "anthropic", False, json.JSONDecodeError),
    ("malformed", Fault.malformed_json(), "anthropic", True, json.JSONDecodeError),
    ("truncate", Fault.truncate(), "openai", False, json.JSONDecodeError),
    ("truncate", Fault.truncate(), "anthropic", False, json.JSONDecodeError),
    ("reset", Fault.reset(), "openai", False, openai.APIConnectionError),
    ("reset", Fault.reset(), "openai", True, openai.APIConnectionError),
    ("reset", Fault.reset(), "anthropic", False, anthropic.APIConnectionError),
    ("reset", Fault.reset(), "anthropic", True, anthropic.APIConnectionError),
    # A reset mid-body: openai wraps it; anthropic's stream lets httpx2's ReadError through.
    ("reset-mid", Fault.reset(after_chunks=2), "openai", False, openai.APIConnectionError),
    ("reset-mid", Fault.reset(after_chunks=2), "openai", True, openai.APIConnectionError),
    ("reset-mid", Fault.reset(after_chunks=2), "anthropic", False, anthropic.APIConnectionError),
    ("reset-mid", Fault.reset(after_chunks=2), "anthropic", True, httpx2.ReadError),
    # An error event in a 200 stream: openai raises its base APIError, anthropic an APIStatusError (200).
    ("stream-error", Fault.stream_error(after_chunks=2), "openai", True, openai.APIError),
    ("stream-error", Fault.stream_error(after_chunks=2), "anthropic", True, anthropic.APIStatusError),
    ("stream-error", Fault.stream_error(), "openai", False, openai.InternalServerError),
    ("stream-error", Fault.stream_error(), "anthropic", False, anthropic.OverloadedError),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("name", "fault", "sdk", "stream", "expected"),
    RAISES,
    ids=[f"{n}-{sdk}-{'stream' if s else 'json'}" for n, _, sdk, s, _ in RAISES],
)
async def test_fault_raises(
    provider: SimulatedProvider,
    mode: str,
    name: str,
    fault: Fault,
    sdk: str,
    stream: bool,
    expected: type[BaseException],
) -> None:
    provider.script("*", fault, times=1)
    timeout = HANG_TIMEOUT if fault.kind == "hang" else TIMEOUT
    with pytest.raises(expected) as info:
        await call(provider, sdk, mode, stream=stream, timeout=timeout)
    # Exact class: a subclass would classify differently (e.g. APIStatusError is an APIError too).
    assert type(info.value) is expected
    assert [r.fault for r in provider.requests] == [fault.kind]


# --- details of the raised errors ---------------------------------------------------------------------------


def test_rate_limit_error_exposes_retry_after(provider: SimulatedProvider) -> None:
    provider.script(OPENAI_MODEL, Fault.rate_limit(2.5), times=1)
    provider.script(ANTHROPIC_MODEL, Fault.rate_limit(7), times=1)
    with pytest.raises(openai.RateLimitError) as oe:
        openai_call(provider, stream=False)
    assert oe.value.response.headers["retry-after"] == "3"
    assert oe.value.response.headers["retry-after-ms"] == "2500"
    assert oe.value.code == "rate_limit_exceeded"
    with pytest.raises(anthropic.RateLimitError) as ae:
        anthropic_call(provider, stream=False)
    assert ae.value.response.headers["retry-after"] == "7"
    assert isinstance(ae.value.body, dict)
    assert ae.value.body["error"]["type"] == "rate_limit_error"


def test_error_bodies_reach_the_sdks_parsed(provider: SimulatedProvider) -> None:
    provider.script(OPENAI_MODEL, Fault.model_not_found(), times=1)
    provider.script(ANTHROPIC_MODEL, Fault.overloaded(), times=1)
    with pytest.raises(openai.NotFoundError) as oe:
        openai_call(provider, stream=False)
    assert oe.value.code == "model_not_found"
    assert oe.value.type == "invalid_request_error"
    assert "gpt-4o" in oe.value.message
    assert oe.value.request_id is not None
    with pytest.raises(anthropic.OverloadedError) as ae:
        anthropic_call(provider, stream=False)
    assert ae.value.status_code == 529
    assert ae.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": ae.value.body["request_id"],  # type: ignore[index]
    }


def test_stream_error_event_bodies(provider: SimulatedProvider) -> None:
    provider.script(OPENAI_MODEL, Fault.stream_error(after_chunks=1), times=1)
    provider.script(ANTHROPIC_MODEL, Fault.stream_error(after_chunks=1), times=1)
    with pytest.raises(openai.APIError) as oe:
        openai_call(provider, stream=True)
    assert oe.value.body == {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(anthropic.APIStatusError) as ae:
        anthropic_call(provider, stream=True)
    assert ae.value.status_code == 200
    assert ae.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


# --- faults the SDKs do not notice --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_openai_stream_without_done_ends_silently(provider: SimulatedProvider, mode: str) -> None:
    provider.script("*", Fault.truncate(), times=1)
    chunks = await call(provider, "openai", mode, stream=True)
    # Everything but [DONE] arrived, including the usage chunk: the SDK cannot tell.
    assert chunks[-1].usage.completion_tokens == 5
    provider.script("*", Fault.truncate(after_chunks=2), times=1)
    chunks = await call(provider, "openai", mode, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The simulated"
    assert all(c.choices[0].finish_reason is None for c in chunks if c.choices)


@pytest.mark.parametrize("mode", MODES)
async def test_anthropic_stream_without_message_stop_ends_silently(
    provider: SimulatedProvider, mode: str
) -> None:
    provider.script("*", Fault.truncate(), times=1)
    events = await call(provider, "anthropic", mode, stream=True)
    assert [e.type for e in events][-2:] == ["content_block_stop", "message_delta"]
    provider.script("*", Fault.truncate(after_chunks=1), times=1)
    events = await call(provider, "anthropic", mode, stream=True)
    assert [e.type for e in events] == ["message_start", "content_block_start", "content_block_delta"]


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stream", [False, True])
async def test_latency_and_gzip_are_transparent(
    provider: SimulatedProvider, sdk: str, mode: str, stream: bool
) -> None:
    provider.script("*", Fault.latency(0.01), times=1)
    provider.script("*", Fault.gzip(), times=1)
    for _ in range(2):
        result = await call(provider, sdk, mode, stream=stream)
        assert result
    assert [r.fault for r in provider.requests] == ["ok", "gzip"]
    assert all(r.status == 200 for r in provider.requests)


def test_gzip_is_decoded_by_the_sdks(provider: SimulatedProvider) -> None:
    provider.script("*", Fault.gzip())
    with openai.OpenAI(base_url=provider.openai_base_url, api_key="sk-test", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=CHAT)
        assert raw.headers["content-encoding"] == "gzip"
        assert raw.parse().choices[0].message.content == "The simulated provider answers every"
    with anthropic.Anthropic(base_url=provider.anthropic_base_url, api_key="k", max_retries=0) as aclient:
        araw = aclient.messages.with_raw_response.create(model=ANTHROPIC_MODEL, max_tokens=10, messages=CHAT)
        assert araw.headers["content-encoding"] == "gzip"
        assert araw.parse().content[0].text == "The simulated provider answers every"  # type: ignore[union-attr]


# --- retries: the request log shows every attempt -----------------------------------------------------------


def test_sdk_retries_are_visible_in_the_request_log(provider: SimulatedProvider) -> None:
    # retry_after keeps the SDKs' backoff short (both read retry-after-ms first).
    provider.script(OPENAI_MODEL, Fault.status(503, retry_after=0.01), times=2)
    provider.script(ANTHROPIC_MODEL, Fault.status(529, retry_after=0.01), times=1)
    with openai.OpenAI(base_url=provider.openai_base_url, api_key="sk-test", max_retries=2) as client:
        reply = client.chat.completions.create(model=OPENAI_MODEL, messages=CHAT)
    assert reply.choices[0].finish_reason == "stop"
    attempts = provider.requests_for(OPENAI_MODEL)
    assert [r.status for r in attempts] == [503, 503, 200]
    assert [r.headers.get("x-stainless-retry-count") for r in attempts] == ["0", "1", "2"]
    with anthropic.Anthropic(base_url=provider.anthropic_base_url, api_key="k", max_retries=2) as aclient:
        message = aclient.messages.create(model=ANTHROPIC_MODEL, max_tokens=10, messages=CHAT)
    assert message.stop_reason == "end_turn"
    assert [r.status for r in provider.requests_for(ANTHROPIC_MODEL)] == [529, 200]


def test_openai_responses_api_and_embeddings(provider: SimulatedProvider) -> None:
    with openai.OpenAI(base_url=provider.openai_base_url, api_key="sk-test", max_retries=0) as client:
        response = client.responses.create(model=OPENAI_MODEL, input="hi")
        assert response.output_text == "The simulated provider answers every"
        assert response.usage is not None
        assert response.usage.output_tokens == 5
        events = [e.type for e in client.responses.create(model=OPENAI_MODEL, input="hi", stream=True)]
        assert events[0] == "response.created"
        assert events[-1] == "response.completed"
        assert events.count("response.output_text.delta") == 5
        embedding = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        assert len(embedding.data) == 2
        assert len(embedding.data[0].embedding) == 8
        legacy = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="x", max_tokens=2)
        assert legacy.choices[0].text == "The simulated"
        assert legacy.choices[0].finish_reason == "length"
        assert [m.id for m in client.models.list()][:2] == ["gpt-4o", "gpt-4o-mini"]


def test_azure_openai_client(provider: SimulatedProvider) -> None:
    with openai.AzureOpenAI(
        azure_endpoint=provider.azure_endpoint, api_key="azure-key", api_version="2024-10-21", max_retries=0
    ) as client:
        reply = client.chat.completions.create(model="my-deployment", messages=CHAT)
    assert reply.model == "my-deployment"
    (record,) = provider.requests
    assert record.api == "azure"
    assert record.path == "/openai/deployments/my-deployment/chat/completions"
    assert record.query == "api-version=2024-10-21"
    assert record.headers["api-key"] == "[REDACTED]"


def test_anthropic_stream_helper_and_usage(provider: SimulatedProvider) -> None:
    provider.stream_chunks = 12
    with (
        anthropic.Anthropic(base_url=provider.anthropic_base_url, api_key="k", max_retries=0) as client,
        client.messages.stream(model=ANTHROPIC_MODEL, max_tokens=100, messages=CHAT) as stream,
    ):
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) == 12
    assert final.usage.output_tokens == 12
    assert final.stop_reason == "end_turn"
    assert final.id.startswith("msg_")
