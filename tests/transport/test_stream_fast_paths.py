"""The fast paths of the per-chunk stream parsing give what the general paths give: the SSE parser's
whole-event path against line-by-line parsing, the JSON scanner against json.loads, dict reading against
attribute reading, and the observer's verdict however the bytes are cut into chunks."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace
from typing import Any

import pytest

from otel_model_health.instrument.responses import ResponseInfo, read_stream_event
from otel_model_health.instrument.transport import jsonfast
from otel_model_health.instrument.transport.gemini import read_gemini
from otel_model_health.instrument.transport.observer import CallObserver
from otel_model_health.instrument.transport.requests import Endpoint, match_endpoint
from otel_model_health.instrument.transport.sse import MAX_LINE, Event, SSEParser
from otel_model_health.testing.anthropic_wire import AnthropicWire
from otel_model_health.testing.content import make_content
from otel_model_health.testing.gemini_wire import GeminiWire
from otel_model_health.testing.openai_wire import OpenAIWire
from otel_model_health.testing.wire import SimRequest, WireFormat

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
RESPONSES = "/v1/responses"
GEMINI = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"


def _wire_stream(path: str, *, usage: bool = False) -> list[bytes]:
    """The events of a 20-chunk simulated stream, one bytes per event."""
    api, operation, wire = {
        CHAT: ("openai", "chat", OpenAIWire()),
        "/v1/completions": ("openai", "completions", OpenAIWire()),
        RESPONSES: ("openai", "responses", OpenAIWire()),
        MESSAGES: ("anthropic", "messages", AnthropicWire()),
        GEMINI: ("gemini", "generate", GeminiWire()),
    }[path]
    body: dict[str, Any] = {"stream": True}
    if usage:
        body["stream_options"] = {"include_usage": True}
    request = SimRequest("POST", path, api, operation, "m-1", True, body, {})
    content = make_content(model="m-1", chunks=20, max_tokens=None, input_tokens=7)
    assert isinstance(wire, WireFormat)
    stream = wire.reply(request, content, models=[])
    assert not isinstance(stream, dict)
    return stream.preamble + stream.chunks + stream.epilogue + stream.terminal


TRICKY = [
    b"data: one\n\n",
    b"event: named\ndata: two\n\n",
    b"data: a\ndata: b\n\n",  # two data lines: one event
    b": keep-alive\n\n",
    b"id: 7\nretry: 10\ndata: three\n\n",
    b"data:no-space\n\n",
    b"data:  two spaces\n\n",
    b"event: only-a-name\n\n",  # no data: no event
    b"event:\ndata: empty name\n\n",
    b"data: \n\n",  # empty data: an event with ""
    b"data\n\n",  # a field without colon
    b"event: e\nevent: f\ndata: last name wins\n\n",
    b"data: x\n\n\n\n",  # extra blank lines
    b"data: caf\xc3\xa9 \xff\n\n",  # utf-8 and an invalid byte
    b"event: x:y\ndata: colon in name\n\n",
    b"data: cr\r\n\r\n",
    b"data: lone cr\r\r",
    b"\n",
    b"data: tail without blank line",
]


def _events(chunks: list[bytes]) -> tuple[list[Event], int]:
    parser = SSEParser()
    out: list[Event] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    out.extend(parser.close())
    return out, parser.dropped


def _cuts(raw: bytes, rng: random.Random) -> list[list[bytes]]:
    """The same bytes cut several ways: whole, one byte at a time (never a whole event: the line by line
    path alone, the reference), and at random points."""
    ways = [[raw], [raw[i : i + 1] for i in range(len(raw))]]
    for _ in range(20):
        points = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.randint(1, 8))))
        ways.append([raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)])
    return ways


@pytest.mark.parametrize("path", [CHAT, "/v1/completions", RESPONSES, MESSAGES, GEMINI])
def test_sse_wire_streams_parse_the_same_however_cut(path: str) -> None:
    events = _wire_stream(path)
    reference, _ = _events([bytes([b]) for b in b"".join(events)])
    assert len(reference) == len(events)
    assert _events(events)[0] == reference  # one event per chunk: the single-event path
    rng = random.Random(path)
    for cut in _cuts(b"".join(events), rng):
        assert _events(cut)[0] == reference


def test_sse_tricky_streams_parse_the_same_however_cut() -> None:
    rng = random.Random(1)
    for i in range(200):
        raw = b"".join(rng.choice(TRICKY) for _ in range(rng.randint(1, 6)))
        reference = _events([raw[j : j + 1] for j in range(len(raw))])
        for cut in _cuts(raw, random.Random(i)):
            assert _events(cut) == reference, (raw, cut)
    # each shape alone, then followed by a whole event in the same chunk
    for shape in TRICKY:
        for raw in (shape, shape + b"data: next\n\n"):
            assert _events([raw]) == _events([raw[j : j + 1] for j in range(len(raw))]), raw


def test_sse_event_ending_in_a_later_chunk() -> None:
    parser = SSEParser()
    assert parser.feed(b'event: message_start\ndata: {"a":') == []
    assert parser.feed(b"1}\n\ndata: two\n\nevent: e\ndata: three\n\ndata: fo") == [
        ("message_start", '{"a":1}'),
        (None, "two"),
        ("e", "three"),
    ]
    assert parser.feed(b"ur\n\n") == [(None, "four")]


def test_sse_whole_events_over_the_cap_are_dropped() -> None:
    big = b"x" * (MAX_LINE + 1)
    parser = SSEParser()
    assert parser.feed(b"data: " + big + b"\n\n") == []  # alone in its chunk
    assert parser.feed(b"event: e\ndata: " + big + b"\n\n") == []
    assert parser.feed(b"data: " + big + b"\n\ndata: ok\n\n") == [(None, "ok")]
    assert parser.feed(b"event: e\ndata: " + big + b"\n\nevent: e\ndata: ok\n\n") == [("e", "ok")]
    # a second data line after an overflowing one drops the event, as line by line
    assert parser.feed(b"data: a\ndata: " + big + b"\n\n") == []
    assert parser.dropped == 1
    # an overflow dropped line by line earlier keeps the rest of its event dropped
    parser = SSEParser()
    assert parser.feed(b"data: " + big + b"\n") == []
    assert parser.feed(b"data: x\n\n") == []
    assert parser.feed(b"data: ok\n\n") == [(None, "ok")]
    # exactly at the cap: kept
    at_cap = b"y" * MAX_LINE
    assert SSEParser().feed(b"data: " + at_cap + b"\n\n") == [(None, at_cap.decode())]


JSON_TEXTS = [
    '{"a": 1}',
    '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi \\u00e9"}}',
    "[1, 2.5, null, true, false]",
    '"a string"',
    "42",
    "-0.5e3",
    "NaN",
    "Infinity",
    " {}",  # leading whitespace: json.loads accepts it
    "{} \n",  # trailing whitespace: accepted
    "\n[1]\n",
    "{}}",  # trailing garbage
    "{} x",
    '{"a": ',
    '{"type": "content_block_delta", "index": 0, "delta": {',
    "",
    "   ",
    "[DONE]",
    "\ufeff{}",  # a BOM: json.loads refuses a str that starts with one
    "{'single': 'quotes'}",
    "tru",
    '"unterminated',
    "[1,]",
]


def _outcome(loads: Any, text: str) -> tuple[str, Any]:
    try:
        return "ok", loads(text)
    except ValueError:
        return "ValueError", None


@pytest.mark.parametrize("text", JSON_TEXTS)
def test_json_fast_path_is_json_loads(text: str) -> None:
    fast = _outcome(jsonfast.loads, text)
    expected = _outcome(json.loads, text)
    assert repr(fast) == repr(expected)  # repr: NaN != NaN


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-32-be"])
@pytest.mark.parametrize("text", JSON_TEXTS)
def test_json_fast_path_on_bytes_is_json_loads(text: str, encoding: str) -> None:
    data = text.encode(encoding)
    assert repr(_outcome(jsonfast.loads_bytes, data)) == repr(_outcome(json.loads, data))


def test_json_fast_path_on_invalid_utf8_is_json_loads() -> None:
    for data in (b'{"a": "\xff"}', b'{"a": "\xc3"}', b"\xff\xfe"):
        assert repr(_outcome(jsonfast.loads_bytes, data)) == repr(_outcome(json.loads, data))


def test_json_fast_path_is_taken_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # With this Python the C scanner is there and used: a Python change that removes it is noticed.
    assert jsonfast.loads is not json.loads
    assert callable(getattr(json.JSONDecoder(), "scan_once", None))

    class NoScanner:
        pass

    monkeypatch.setattr(json, "JSONDecoder", NoScanner)
    assert jsonfast._make_loads() is jsonfast._json_loads


def _as_object(value: Any) -> Any:
    """A decoded JSON value as an SDK-like object: attributes instead of keys."""
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _as_object(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_as_object(v) for v in value]
    return value


def _info_fields(info: ResponseInfo) -> dict[str, Any]:
    return {name: getattr(info, name) for name in ResponseInfo.__slots__}


def _sse_payloads(path: str, **kwargs: Any) -> list[Event]:
    return [e for e in _events(_wire_stream(path, **kwargs))[0] if e[1] != "[DONE]"]


ERROR_EVENTS: list[Event] = [
    ("error", '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'),
    (None, '{"error":{"message":"boom","type":"server_error","code":null}}'),
    ("error", '{"type":"error"}'),
    (
        None,
        '{"type":"response.failed","response":{"object":"response","status":"failed","error":'
        '{"code":"server_error","message":"x"}}}',
    ),
]


@pytest.mark.parametrize(
    "events",
    [
        _sse_payloads(CHAT),
        _sse_payloads(CHAT, usage=True),
        _sse_payloads("/v1/completions"),
        _sse_payloads(RESPONSES),
        _sse_payloads(MESSAGES),
        *([event] for event in ERROR_EVENTS),
    ],
)
def test_read_stream_event_dicts_and_objects_alike(events: list[Event]) -> None:
    from_dicts, from_objects = ResponseInfo(), ResponseInfo()
    for name, data in events:
        obj = json.loads(data)
        read_stream_event(obj, from_dicts, event_name=name)
        read_stream_event(_as_object(obj), from_objects, event_name=name)
    assert _info_fields(from_dicts) == _info_fields(from_objects)


def test_read_stream_event_reads_error_events() -> None:
    read = []
    for name, data in ERROR_EVENTS:
        info = ResponseInfo()
        read_stream_event(json.loads(data), info, event_name=name)
        read.append((info.error_type, info.error_message))
    assert read == [
        ("overloaded_error", "Overloaded"),
        ("server_error", "boom"),
        (None, None),  # no error object: the observer names it from the event
        ("server_error", "x"),
    ]


def test_read_stream_event_reads_the_wire_streams() -> None:
    expected = {
        CHAT: ("m-1", "stop", None, None),
        RESPONSES: ("m-1", "completed", 7, 20),
        MESSAGES: ("m-1", "end_turn", 7, 20),
    }
    for path, (model, reason, input_tokens, output_tokens) in expected.items():
        info = ResponseInfo()
        for name, data in _sse_payloads(path):
            read_stream_event(json.loads(data), info, event_name=name)
        assert (info.response_model, info.finish_reasons, info.input_tokens, info.output_tokens) == (
            model,
            [reason],
            input_tokens,
            output_tokens,
        ), path
        assert info.response_id
    info = ResponseInfo()
    for _, data in _sse_payloads(CHAT, usage=True):
        read_stream_event(json.loads(data), info)
    assert (info.input_tokens, info.output_tokens) == (7, 20)


def test_read_gemini_dicts_and_other_mappings_alike() -> None:
    class Frozen(dict[str, Any]):
        """A Mapping that is not exactly a dict: the ABC path."""

    def frozen(value: Any) -> Any:
        if isinstance(value, dict):
            return Frozen({k: frozen(v) for k, v in value.items()})
        if isinstance(value, list):
            return [frozen(v) for v in value]
        return value

    payloads = [*_sse_payloads(GEMINI), (None, '{"error":{"code":503,"status":"UNAVAILABLE","message":"m"}}')]
    plain, other = ResponseInfo(), ResponseInfo()
    for _, data in payloads:
        read_gemini(json.loads(data), plain)
        read_gemini(frozen(json.loads(data)), other)
    assert _info_fields(plain) == _info_fields(other)
    assert (plain.finish_reasons, plain.input_tokens, plain.output_tokens) == (["STOP"], 7, 20)
    assert plain.error_type == "UNAVAILABLE"


class _Measurement:
    """What the observer's chunk path uses of a CallMeasurement."""

    done = False

    def first_chunk(self) -> None:
        pass


def _observe(endpoint: Endpoint, chunks: list[bytes]) -> tuple[Any, ...]:
    observer = CallObserver(_Measurement(), endpoint, None)  # type: ignore[arg-type]
    observer.response(200, "text/event-stream", None, None)
    for chunk in chunks:
        observer.handing(chunk)
        observer.handed()
    parser = observer._sse
    assert parser is not None
    for event in parser.close():
        observer._event(*event)
    return (*_info_fields(observer._info).values(), observer._terminal, observer._malformed)


MALFORMED = b'data: {"type": "content_block_delta", "index": 0, "delta": {\n\n'


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        (CHAT, b""),
        (CHAT, MALFORMED),
        (RESPONSES, b""),
        (MESSAGES, b""),
        (MESSAGES, b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n'),
        (GEMINI, b""),
    ],
)
def test_observer_verdict_does_not_depend_on_chunking(path: str, extra: bytes) -> None:
    endpoint = match_endpoint("POST", path)
    assert endpoint is not None
    events = _wire_stream(path)
    events = [*events[:3], extra, *events[3:]] if extra else events
    raw = b"".join(events)
    reference = _observe(endpoint, [raw[i : i + 1] for i in range(len(raw))])
    assert _observe(endpoint, events) == reference
    for cut in _cuts(raw, random.Random(path)):
        assert _observe(endpoint, cut) == reference
    terminal, malformed = reference[-2:]
    assert malformed == (extra == MALFORMED)
    if path in (CHAT, RESPONSES, MESSAGES) and not extra:
        assert terminal or reference[list(ResponseInfo.__slots__).index("terminal")]
