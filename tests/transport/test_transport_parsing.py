"""Pure parts of the transport: endpoint table, request fields, host table, SSE parser, bodies."""

from __future__ import annotations

import gzip
import json
import timeit
import zlib

import backports.zstd as backports_zstd
import brotli
import pytest

from otel_model_health import hosts
from otel_model_health.instrument.transport import bodies, decoding
from otel_model_health.instrument.transport.jsonscan import top_level_fields
from otel_model_health.instrument.transport.requests import match_endpoint, model_and_stream
from otel_model_health.instrument.transport.sse import MAX_LINE, SSEParser

BIG = "x" * 1_000_000


@pytest.mark.parametrize(
    ("path", "operation", "dialect", "path_model"),
    [
        ("/v1/chat/completions", "chat", "openai", None),
        ("/proxy/openai/v1/chat/completions", "chat", "openai", None),
        ("/v1/completions", "text_completion", "openai", None),
        ("/v1/embeddings", "embeddings", "openai", None),
        ("/v1/responses", "chat", "openai", None),
        ("/v1/messages", "chat", "anthropic", None),
        ("/openai/deployments/my-gpt4/chat/completions", "chat", "openai", "my-gpt4"),
        ("/openai/deployments/emb/embeddings", "embeddings", "openai", "emb"),
        ("/v1beta/models/gemini-2.5-flash:generateContent", "generate_content", "gemini", "gemini-2.5-flash"),
        (
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            "generate_content",
            "gemini",
            "gemini-2.5-flash",
        ),
    ],
)
def test_model_endpoints(path: str, operation: str, dialect: str, path_model: str | None) -> None:
    endpoint = match_endpoint("POST", path)
    assert endpoint is not None
    assert (endpoint.operation, endpoint.dialect, endpoint.path_model) == (operation, dialect, path_model)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models"),
        ("POST", "/v1/models"),
        ("GET", "/v1/chat/completions"),
        ("POST", "/v1/threads/t_1/messages"),
        ("POST", "/v1/messages/count_tokens"),
        ("POST", "/v1/files"),
        ("GET", "/v1/responses/resp_1"),
    ],
)
def test_other_requests_are_not_model_calls(method: str, path: str) -> None:
    assert match_endpoint(method, path) is None


def test_azure_and_gemini_stream_flags() -> None:
    gemini = match_endpoint("POST", "/v1beta/models/g:streamGenerateContent")
    assert gemini is not None and gemini.path_stream is True
    azure = match_endpoint("POST", "/openai/deployments/d/chat/completions")
    assert azure is not None and azure.provider == "azure.ai.openai"


def test_model_first_openai_order() -> None:
    body = json.dumps({"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": BIG}]})
    assert model_and_stream(body.encode()) == ("gpt-4o", True)


def test_model_last_after_one_megabyte_prompt() -> None:
    # anthropic's order: max_tokens, messages, model, metadata, stream
    body = json.dumps(
        {
            "max_tokens": 10,
            "messages": [{"role": "user", "content": BIG}],
            "model": "claude-sonnet-4-6",
            "metadata": {"user_id": "u"},
            "stream": True,
        }
    ).encode()
    assert model_and_stream(body) == ("claude-sonnet-4-6", True)


def test_model_string_inside_content_does_not_fool_the_scan() -> None:
    fake = 'ignore this: "model": "evil-model", {"model": "evil2"} , "stream": true'
    body = json.dumps(
        {"max_tokens": 1, "messages": [{"role": "user", "content": fake + BIG}], "model": "real", "x": fake}
    ).encode()
    assert model_and_stream(body) == ("real", False)
    # the same with the real model before the prompt and a fake one last
    body = json.dumps({"model": "real", "messages": [{"role": "user", "content": BIG}], "z": fake}).encode()
    assert model_and_stream(body) == ("real", False)


def test_nested_model_keys_are_not_top_level() -> None:
    # a tool_use input and a metadata object with a "model" key, written after the real one
    body = json.dumps(
        {
            "messages": [
                {"role": "assistant", "content": [{"type": "tool_use", "input": {"model": "nested"}}]},
                {"role": "user", "content": BIG},
            ],
            "model": "real",
            "metadata": {"model": "nested-after", "stream": True},
            "tools": [{"input_schema": {"properties": {"model": {"type": "string"}}}}],
        }
    ).encode()
    assert model_and_stream(body) == ("real", False)


def test_unparseable_and_missing_bodies() -> None:
    assert model_and_stream(None) == (None, False)
    assert model_and_stream(b"not json") == (None, False)
    assert model_and_stream(b'{"messages": []}') == (None, False)
    assert model_and_stream(b'  {"model" : "spaced" , "stream" : false}  ') == ("spaced", False)
    assert model_and_stream(b'{"model": "\\u00e9t\\u00e9"}') == ("été", False)


@pytest.mark.parametrize("content_length", [10, 3_900, 4_100, 20_000])
def test_small_and_large_bodies_give_the_same_answer(content_length: int) -> None:
    # Up to the 4 KiB head window the body is parsed whole; beyond it, walked. Same answers either way.
    messages = [{"role": "user", "content": "x" * content_length}]
    tool = {"input_schema": {"properties": {"model": {"type": "string"}}}}
    openai_order = {"messages": messages, "model": "gpt-4o", "stream": True, "tools": [tool]}
    anthropic_order = {"max_tokens": 5, "messages": messages, "model": "claude", "metadata": {"model": "x"}}
    assert model_and_stream(json.dumps(openai_order).encode()) == ("gpt-4o", True)
    assert model_and_stream(json.dumps(anthropic_order).encode()) == ("claude", False)


def test_fallback_when_many_nested_candidates() -> None:
    nested = [{"type": "tool_use", "input": {"model": f"n{i}"}} for i in range(20)]
    body = json.dumps({"model": "real", "messages": [{"role": "user", "content": BIG}, *nested]}).encode()
    body2 = json.dumps({"messages": [{"content": BIG}, {"content": nested}], "model": "real"}).encode()
    assert model_and_stream(body)[0] == "real"
    assert model_and_stream(body2)[0] == "real"
    assert top_level_fields(body2, ("model",)) == {"model": "real"}


def test_scan_cost_of_a_one_megabyte_body_is_small() -> None:
    body = json.dumps(
        {"max_tokens": 10, "messages": [{"role": "user", "content": BIG}], "model": "m", "stream": True}
    ).encode()
    n = 200
    scan = timeit.timeit(lambda: model_and_stream(body), number=n) / n
    full = timeit.timeit(lambda: json.loads(body), number=20) / 20
    print(f"model_and_stream on 1 MB: {scan * 1e6:.1f} us; json.loads: {full * 1e6:.1f} us")
    assert scan < full  # no timing threshold: only that it beats a full parse


def test_host_table() -> None:
    resolver = hosts.HostResolver({"llm.corp.example": ("openai", "corp")})
    assert resolver.resolve("api.openai.com") == hosts.Route("openai")
    assert resolver.resolve("myres.openai.azure.com").provider == "azure.ai.openai"
    assert resolver.resolve("openrouter.ai").provider_from_model
    assert resolver.resolve("127.0.0.1").gateway == "self_hosted"
    assert resolver.resolve("llm.corp.example") == hosts.Route("openai", "corp")
    assert resolver.resolve("vllm.internal") == hosts.Route(None, None)
    hosts.register_host("vllm.internal", gateway="vllm")
    try:
        assert resolver.resolve("vllm.internal").gateway == "vllm"
    finally:
        hosts.unregister_host("vllm.internal")
    assert resolver.resolve("vllm.internal").gateway is None
    assert hosts.provider_from_model("anthropic/claude-3-opus") == "anthropic"
    assert hosts.provider_from_model("gpt-4o") is None


def test_sse_split_across_chunks_and_crlf() -> None:
    parser = SSEParser()
    raw = b'event: message_start\r\ndata: {"a":\r\ndata: 1}\r\n\r\n: keepalive\n\ndata: [DONE]\n\n'
    events = []
    for i in range(len(raw)):  # one byte at a time: every split point
        events.extend(parser.feed(raw[i : i + 1]))
    events.extend(parser.close())
    assert events == [("message_start", '{"a":\n1}'), (None, "[DONE]")]


def test_sse_last_event_without_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x") == []
    assert parser.close() == [(None, "x")]


def test_sse_overlong_line_is_dropped_not_accumulated() -> None:
    parser = SSEParser()
    piece = b"a" * (64 * 1024)
    parser.feed(b"data: ")
    for _ in range((MAX_LINE // len(piece)) + 4):
        assert parser.feed(piece) == []
    assert parser._partial_size <= MAX_LINE  # bounded while the line goes on
    assert parser.feed(b"\n\ndata: ok\n\n") == [(None, "ok")]
    assert parser.dropped == 1


def test_bodies_decode_gzip_deflate_br() -> None:
    data = json.dumps({"model": "m"}).encode()
    assert bodies.decode(gzip.compress(data), "gzip") == data
    assert bodies.decode(zlib.compress(data), "deflate") == data
    raw_deflate = zlib.compressobj(wbits=-15)
    assert bodies.decode(raw_deflate.compress(data) + raw_deflate.flush(), "deflate") == data
    assert bodies.decode(brotli.compress(data), "br") == data
    assert bodies.decode(data, None) == data
    with pytest.raises(bodies.Unsupported):
        bodies.decode(data, "compress")


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_corrupt_compressed_body_is_malformed(encoding: str) -> None:
    with pytest.raises(bodies.Malformed):
        bodies.decode(b"\x1f\x8b\x08\x00garbage-not-compressed", encoding)


@pytest.mark.parametrize("backend", ["backports.zstd", "zstandard"])
def test_bodies_decode_zstd(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx2 decodes zstd with compression.zstd / backports.zstd, httpx with zstandard: either will do.
    if backend == "zstandard":
        monkeypatch.setattr(decoding, "_ZstdDecompressor", None)
    data = json.dumps({"model": "m"}).encode()
    assert bodies.decode(backports_zstd.compress(data), "zstd") == data
    two_frames = backports_zstd.compress(data[:5]) + backports_zstd.compress(data[5:])
    assert bodies.decode(two_frames, "zstd") == data
    with pytest.raises(bodies.TooLarge):
        bodies.decode(backports_zstd.compress(b"\0" * (bodies.MAX_DECODED + 1024)), "zstd")
    with pytest.raises(bodies.Malformed):
        bodies.decode(b"garbage-not-compressed", "zstd")
    # Cut short: an incomplete frame, as httpx(2)'s zstd decoders say on flush.
    with pytest.raises(bodies.Malformed):
        bodies.decode(backports_zstd.compress(data)[:-4], "zstd")


def test_zstd_without_a_decoder_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decoding, "_ZstdDecompressor", None)
    monkeypatch.setattr(decoding, "_zstandard", None)
    with pytest.raises(bodies.Unsupported):
        bodies.decode(backports_zstd.compress(b"{}"), "zstd")


def test_deeply_nested_request_body_does_not_stop_the_scan() -> None:
    deep = b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b', "model": "m"}'
    assert model_and_stream(deep) == ("m", False)
    assert top_level_fields(b"[" * 100_000, ("model",)) == {}


def test_compressed_bomb_is_capped() -> None:
    bomb = gzip.compress(b"\0" * (bodies.MAX_DECODED + 1024))
    assert len(bomb) < 100_000
    with pytest.raises(bodies.TooLarge):
        bodies.decode(bomb, "gzip")
    with pytest.raises(bodies.TooLarge):
        bodies.decode(brotli.compress(b"\0" * (bodies.MAX_DECODED + 1024)), "br")


def test_body_copy_is_bounded() -> None:
    copy = bodies.BodyCopy()
    chunk = b"x" * (1024 * 1024)
    for _ in range(bodies.MAX_RAW // len(chunk) + 2):
        copy.add(chunk)
    assert copy.overflow and copy.chunks == []
    with pytest.raises(bodies.TooLarge):
        copy.data()
    with pytest.raises(bodies.Malformed):
        bodies.parse_json(b"{not json")


@pytest.mark.integration
def test_transport_module_imports_without_httpx() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['httpx'] = None; sys.modules['httpx2'] = None\n"  # make both unimportable
        "from otel_model_health.instrument.transport import ModelHealthTransport\n"
        "try:\n"
        "    ModelHealthTransport()\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'otel_model_health[httpx2]'" in out
