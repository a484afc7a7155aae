"""The transport on plain httpx 0.28 and httpx2 clients: pass-through, streaming without buffering,
instrument_client keeping proxies and limits, error paths, secrets."""

from __future__ import annotations

import gc
import gzip
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import backports.zstd as backports_zstd
import httpx
import httpx2
import openai
import pytest
from kit import API_KEY, Telemetry

from otel_model_health.instrument.transport import (
    AsyncModelHealthTransport,
    ModelHealthTransport,
    instrument_client,
)
from otel_model_health.instrument.transport import observer as observer_module
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import Fault, SimulatedProvider

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def test_transport_is_accepted_by_both_modules(telemetry: Telemetry) -> None:
    t1 = ModelHealthTransport(httpx.HTTPTransport(), **telemetry.options())
    t2 = ModelHealthTransport(httpx2.HTTPTransport(), **telemetry.options())
    a1 = AsyncModelHealthTransport(httpx.AsyncHTTPTransport(), **telemetry.options())
    assert isinstance(t1, httpx.BaseTransport) and not isinstance(t1, httpx2.BaseTransport)
    assert isinstance(t2, httpx2.BaseTransport) and isinstance(t2, ModelHealthTransport)
    assert isinstance(a1, httpx.AsyncBaseTransport)
    assert isinstance(ModelHealthTransport(module="httpx"), httpx.BaseTransport)
    for t in (t1, t2):
        t.close()


@pytest.mark.integration
def test_plain_httpx_client_non_stream_and_passthrough(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    transport = ModelHealthTransport(httpx.HTTPTransport(), **telemetry.options())
    with httpx.Client(transport=transport, base_url=sim.openai_base_url) as client:
        models = client.get("/models")
        assert models.status_code == 200
        response = client.post("/chat/completions", json=CHAT)
        assert response.json()["choices"][0]["message"]["content"]
    spans = telemetry.model_spans()
    assert [s.name for s in spans] == ["chat gpt-4o"]  # GET /v1/models: no span
    assert telemetry.recorder.verdicts == [(Outcome.SUCCESS, None)]


@pytest.mark.integration
def test_first_chunk_reaches_caller_before_the_rest_is_sent(
    sim: SimulatedProvider, telemetry: Telemetry
) -> None:
    # The server sends one chunk, then waits until the test releases it.
    sim.script("gpt-4o", Fault.hang(after_chunks=1), times=1)
    transport = ModelHealthTransport(httpx.HTTPTransport(), **telemetry.options())
    with (
        httpx.Client(transport=transport, base_url=sim.openai_base_url) as client,
        client.stream("POST", "/chat/completions", json={**CHAT, "stream": True}) as response,
    ):
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data:"))
        assert json.loads(first[5:])["object"] == "chat.completion.chunk"
        assert not telemetry.model_spans()  # still open: the stream goes on
        assert sim.wait_for_hangs(1)
        sim.release_hangs()
        rest = list(lines)
    assert rest[-2:] == ["data: [DONE]", ""] or rest[-1] == "data: [DONE]"
    assert telemetry.recorder.verdicts == [(Outcome.SUCCESS, None)]


@pytest.mark.integration
async def test_async_httpx2_stream(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    transport = AsyncModelHealthTransport(httpx2.AsyncHTTPTransport(), **telemetry.options())
    async with (
        httpx2.AsyncClient(transport=transport, base_url=sim.openai_base_url) as client,
        client.stream("POST", "/chat/completions", json={**CHAT, "stream": True}) as response,
    ):
        chunks = [chunk async for chunk in response.aiter_bytes()]
    assert b"[DONE]" in b"".join(chunks)
    assert telemetry.recorder.verdicts == [(Outcome.SUCCESS, None)]


@pytest.mark.integration
def test_abandoned_stream_is_finalised_once(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    transport = ModelHealthTransport(httpx2.HTTPTransport(), **telemetry.options())
    client = httpx2.Client(transport=transport, base_url=sim.openai_base_url)
    request = client.build_request("POST", "/chat/completions", json={**CHAT, "stream": True})
    response = client.send(request, stream=True)
    del response
    gc.collect()
    assert telemetry.recorder.verdicts == [(Outcome.NEUTRAL, "cancelled")]
    client.close()
    gc.collect()
    assert len(telemetry.recorder.records) == 1


@pytest.mark.integration
async def test_abandoned_async_stream_is_finished_after_the_idle_limit(
    sim: SimulatedProvider, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx2's pool keeps an abandoned async stream alive, so no finaliser runs while the loop does:
    the idle sweep (run at the start of calls) finishes it as cancelled, once."""
    transport = AsyncModelHealthTransport(httpx2.AsyncHTTPTransport(), **telemetry.options())
    async with httpx2.AsyncClient(transport=transport, base_url=sim.openai_base_url) as client:
        request = client.build_request("POST", "/chat/completions", json={**CHAT, "stream": True})
        response = await client.send(request, stream=True)
        async for _ in response.aiter_raw():
            break  # read one chunk, then neither read nor close it
        observer_module.sweep_idle_streams(time.monotonic() + 1.0)
        assert telemetry.recorder.verdicts == []  # not idle long enough
        monkeypatch.setattr(observer_module, "_next_sweep", 0.0)
        observer_module.sweep_idle_streams(time.monotonic() + observer_module.IDLE_STREAM_LIMIT_S + 1.0)
        assert telemetry.recorder.verdicts == [(Outcome.NEUTRAL, "cancelled")]
        await response.aclose()
    assert len(telemetry.recorder.records) == 1


def test_transport_errors_are_reraised_unchanged(telemetry: Telemetry) -> None:
    error = httpx.ConnectError("boom")

    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    transport = ModelHealthTransport(httpx.MockTransport(handler), **telemetry.options())
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError) as caught:
        client.post("https://api.openai.com/v1/chat/completions", json=CHAT)
    assert caught.value is error
    assert any(frame.name == "handler" for frame in caught.traceback)
    assert telemetry.recorder.verdicts == [(Outcome.FAILURE, "connection_error")]
    key = telemetry.recorder.records[0].key
    assert (key.provider, key.gateway) == ("openai", "direct")


def test_in_memory_response_and_host_table(telemetry: Telemetry) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "x", "model": "anthropic/claude-3-opus", "choices": []})

    transport = ModelHealthTransport(httpx.MockTransport(handler), **telemetry.options())
    with httpx.Client(transport=transport) as client:
        body = {"model": "anthropic/claude-3-opus", "messages": []}
        assert client.post("https://openrouter.ai/api/v1/chat/completions", json=body).json()["id"] == "x"
        client.post("https://myres.openai.azure.com/openai/deployments/prod-4o/chat/completions", json={})
        client.post(
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        )
    keys = [(r.key.provider, r.key.model, r.key.gateway) for r in telemetry.recorder.records]
    assert keys == [
        ("anthropic", "anthropic/claude-3-opus", "openrouter"),
        ("azure.ai.openai", "prod-4o", "direct"),
        ("gcp.gemini", "gemini-2.5-flash", "direct"),
    ]
    ops = [dict(s.attributes or {})["gen_ai.operation.name"] for s in telemetry.model_spans()]
    assert ops == ["chat", "chat", "generate_content"]


@pytest.mark.integration
def test_provider_and_gateway_overrides(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    transport = ModelHealthTransport(
        httpx.HTTPTransport(), provider="groq", gateway="my-proxy", **telemetry.options()
    )
    with httpx.Client(transport=transport, base_url=sim.openai_base_url) as client:
        client.post("/chat/completions", json=CHAT)
    key = telemetry.recorder.records[0].key
    assert (key.provider, key.gateway) == ("groq", "my-proxy")


@pytest.mark.integration
def test_internal_error_leaves_the_call_untouched(
    sim: SimulatedProvider, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bug in our parser")

    monkeypatch.setattr(observer_module, "read_response", broken)
    monkeypatch.setattr(observer_module, "read_stream_event", broken)
    transport = ModelHealthTransport(httpx.HTTPTransport(), **telemetry.options())
    with httpx.Client(transport=transport, base_url=sim.openai_base_url) as client:
        assert client.post("/chat/completions", json=CHAT).json()["choices"]
        with client.stream("POST", "/chat/completions", json={**CHAT, "stream": True}) as response:
            assert b"[DONE]" in response.read()
    assert len(telemetry.recorder.records) == 2  # still finished once each, from the status


def test_instrument_client_keeps_env_proxy_and_limits(
    monkeypatch: pytest.MonkeyPatch, telemetry: Telemetry
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = openai.DefaultHttpxClient(limits=httpx2.Limits(max_connections=7, max_keepalive_connections=3))
    mounts = {p: t for p, t in client._mounts.items() if t is not None}
    assert mounts, "the env proxy makes a mount"
    assert instrument_client(client, **telemetry.options()) is client
    assert isinstance(client._transport, ModelHealthTransport)
    pool = client._transport.wrapped._pool
    assert (pool._max_connections, pool._max_keepalive_connections) == (7, 3)
    for pattern, transport in client._mounts.items():
        if transport is None:
            continue
        assert isinstance(transport, ModelHealthTransport)
        assert transport.wrapped is mounts[pattern]  # the same proxy transport, still proxying
        assert type(transport.wrapped._pool).__name__ == "HTTPProxy"
        assert transport.wrapped._pool._max_connections == 7
    # idempotent: no double wrapping
    inner = client._transport
    instrument_client(client, **telemetry.options())
    assert client._transport is inner and not isinstance(inner.wrapped, ModelHealthTransport)
    client.close()


def test_instrument_client_async_and_rejects_other_objects(telemetry: Telemetry) -> None:
    client = httpx.AsyncClient()
    instrument_client(client, **telemetry.options())
    assert isinstance(client._transport, AsyncModelHealthTransport)
    with pytest.raises(TypeError):
        instrument_client(object())


@pytest.mark.integration
def test_no_secret_or_prompt_reaches_telemetry(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    prompt = "PROMPT-TEXT-must-not-leak-42"
    sim.script("gpt-4o", Fault.status(401, message=f"Incorrect API key provided: {API_KEY}"), times=1)
    sim.script("gpt-4o", Fault.stream_error(after_chunks=1, message=f"bad key {API_KEY}"), times=1)
    http_client = instrument_client(openai.DefaultHttpxClient(), **telemetry.options())
    client = openai.OpenAI(
        base_url=sim.openai_base_url,
        api_key=API_KEY,
        http_client=http_client,
        max_retries=0,
        default_query={"api_key": API_KEY},  # a key-like query parameter must not leak either
    )
    messages: Any = [{"role": "user", "content": prompt}]
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o", messages=messages)
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="gpt-4o", messages=messages, stream=True))
    client.chat.completions.create(model="gpt-4o", messages=messages)
    assert len(telemetry.recorder.records) == 3

    texts: list[str] = []
    for span in telemetry.spans():
        texts.append(json.dumps(dict(span.attributes or {}), default=str))
        texts.append(str(span.status.description))
        texts.extend(json.dumps(dict(e.attributes or {}), default=str) for e in span.events)
    for points in telemetry.metrics().values():
        texts.extend(json.dumps(dict(p.attributes), default=str) for p in points)
    texts.extend(json.dumps(r.kwargs, default=str) for r in telemetry.recorder.records)
    blob = "\n".join(texts)
    assert "Incorrect API key provided" in blob  # the message itself is kept, scrubbed
    assert API_KEY not in blob and "SECRETKEY" not in blob
    assert prompt not in blob


@pytest.mark.integration
def test_capture_content_when_opted_in(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    transport = ModelHealthTransport(httpx.HTTPTransport(), capture_content=True, **telemetry.options())
    with httpx.Client(transport=transport, base_url=sim.openai_base_url) as client:
        answer = client.post("/chat/completions", json=CHAT).json()["choices"][0]["message"]["content"]
        with client.stream("POST", "/chat/completions", json={**CHAT, "stream": True}) as response:
            response.read()
    for span in telemetry.model_spans():
        attrs = dict(span.attributes or {})
        inputs = json.loads(str(attrs["gen_ai.input.messages"]))
        assert inputs == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
        outputs = json.loads(str(attrs["gen_ai.output.messages"]))
        assert outputs[0]["parts"][0]["content"] == answer
        assert outputs[0]["finish_reason"] == "stop"


@pytest.mark.integration
def test_concurrent_calls_are_measured_separately(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    transport = ModelHealthTransport(httpx.HTTPTransport(), **telemetry.options())
    with httpx.Client(transport=transport, base_url=sim.openai_base_url) as client:
        threads = [
            threading.Thread(target=client.post, args=("/chat/completions",), kwargs={"json": CHAT})
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert telemetry.recorder.verdicts == [(Outcome.SUCCESS, None)] * 8
    assert all(s.parent is None for s in telemetry.model_spans())


@pytest.mark.integration
def test_nests_with_opentelemetry_instrumentation_httpx(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    from opentelemetry.instrumentation.httpx import SyncOpenTelemetryTransportHttpx2

    otel = SyncOpenTelemetryTransportHttpx2(httpx2.HTTPTransport(), tracer_provider=telemetry.tracer_provider)
    transport = ModelHealthTransport(otel, **telemetry.options())
    with httpx2.Client(transport=transport, base_url=sim.openai_base_url) as client:
        client.post("/chat/completions", json=CHAT)
    (ours,) = telemetry.model_spans()
    http_spans = [s for s in telemetry.spans() if s is not ours]
    assert len(http_spans) == 1
    assert http_spans[0].parent is not None and http_spans[0].parent.span_id == ours.context.span_id


class _UnprintableConnectError(httpx.ConnectError):
    def __str__(self) -> str:
        raise ValueError("__str__ is the exception author's code")


def test_exception_whose_str_raises_is_reraised_and_recorded(telemetry: Telemetry) -> None:
    # Formatting the error message used to run outside any guard: the ValueError from __str__
    # replaced the caller's exception.
    error = _UnprintableConnectError("boom")

    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    transport = ModelHealthTransport(httpx.MockTransport(handler), **telemetry.options())
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError) as caught:
        client.post("https://api.openai.com/v1/chat/completions", json=CHAT)
    assert caught.value is error
    assert telemetry.recorder.verdicts == [(Outcome.FAILURE, "connection_error")]
    assert telemetry.recorder.records[0].kwargs["error_message"] == "_UnprintableConnectError"


def _compressed(encoding: str, data: bytes) -> bytes:
    return gzip.compress(data) if encoding == "gzip" else backports_zstd.compress(data)


@pytest.mark.parametrize("streamed", [True, False])
@pytest.mark.parametrize("encoding", ["zstd", "gzip"])
@pytest.mark.parametrize("module", [httpx, httpx2])
def test_compressed_bodies_are_read_and_judged(
    module: Any, encoding: str, streamed: bool, telemetry: Telemetry
) -> None:
    # Each client asks for zstd when its decoder is installed (httpx: zstandard; httpx2: backports.zstd or
    # Python 3.14's compression.zstd); the provider may then answer with it. Streamed, the transport sees
    # the compressed bytes; read in memory (MockTransport with content=), the already decoded ones.
    good = json.dumps({"id": "z-1", "model": "gpt-4o", "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
    bodies_sent = [_compressed(encoding, good.encode()), _compressed(encoding, b'{"id": "z-2", "mod')]

    class Body(module.SyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, data: bytes) -> None:
            self.data = data

        def __iter__(self) -> Iterator[bytes]:
            yield self.data

    def handler(request: Any) -> Any:
        data = bodies_sent.pop(0)
        headers = {"content-type": "application/json", "content-encoding": encoding}
        if streamed:
            return module.Response(200, stream=Body(data), headers=headers)
        return module.Response(200, content=data, headers=headers)

    transport = ModelHealthTransport(module.MockTransport(handler), **telemetry.options())
    with module.Client(transport=transport) as client:
        assert encoding in client.headers["accept-encoding"]
        assert client.post("https://api.openai.com/v1/chat/completions", json=CHAT).json()["id"] == "z-1"
        with pytest.raises(json.JSONDecodeError):  # the caller's own parse fails on the cut body
            client.post("https://api.openai.com/v1/chat/completions", json=CHAT).json()
    assert telemetry.recorder.verdicts == [(Outcome.SUCCESS, None), (Outcome.FAILURE, "malformed_response")]
    attributes = dict(telemetry.model_spans()[0].attributes or {})
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (3, 4)
