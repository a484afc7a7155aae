"""Property tests: the incremental decoders, the SSE parser and the request-body scanner against plain
references (decode the whole body with the standard codecs, then parse it the simple way), on generated
streams and on arbitrary bytes. What the library reads must be what a client would read, and nothing
here may raise anything but the decoders' own documented errors."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import brotli
import pytest
from backports import zstd as backports_zstd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_model_health.instrument.transport import decoding
from otel_model_health.instrument.transport.jsonscan import top_level_fields
from otel_model_health.instrument.transport.sse import SSEParser

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


ENCODINGS: dict[str, Any] = {
    "identity": lambda b: b,
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "raw-deflate": _raw_deflate,
    "br": brotli.compress,
    "zstd": backports_zstd.compress,
}


def _header(name: str) -> str:
    return "deflate" if name == "raw-deflate" else name


def _chunks(data: bytes, cuts: list[int], encoding: str = "identity") -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    if encoding == "raw-deflate":
        # httpx (and so we) decide zlib-wrapped vs raw deflate on the first chunk; a real first read holds
        # more than the two header bytes that decision needs.
        points = [p for p in points if p >= 2]
    out, start = [], 0
    for point in [*points, len(data)]:
        out.append(data[start:point])
        start = point
    return out


def reference_sse(text: str) -> list[tuple[str | None, str]]:
    """The WHATWG event-stream algorithm, line by line, as the SDKs' decoders apply it."""
    events: list[tuple[str | None, str]] = []
    name: str | None = None
    data: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            if data:
                events.append((name, "\n".join(data)))
            name, data = None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
    if data:  # a last event without its blank line still counts (the SDKs deliver it)
        events.append((name, "\n".join(data)))
    return events


def parse_incrementally(chunks: list[bytes], encoding: str) -> tuple[list[tuple[str | None, str]], bool]:
    decoder = decoding.ContentDecoder(encoding)
    parser = SSEParser()
    events: list[tuple[str | None, str]] = []
    for chunk in chunks:
        for piece in decoder.feed(chunk):
            events.extend(parser.feed(piece))
    decoder.finish()
    events.extend(parser.close())
    return events, parser.invalid


# Field values without line breaks (they would start a new line); any other text, unicode included.
value_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40)
sse_event = st.tuples(st.one_of(st.none(), value_text), st.lists(value_text, min_size=1, max_size=3))


@SETTINGS
@given(
    events=st.lists(sse_event, max_size=12),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    comments=st.booleans(),
    encoding=st.sampled_from(sorted(ENCODINGS)),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_compressed_event_streams_parse_like_the_reference(
    events: list[tuple[str | None, list[str]]],
    newline: str,
    comments: bool,
    encoding: str,
    cuts: list[int],
) -> None:
    lines: list[str] = []
    for name, data in events:
        if comments:
            lines.append(": keep-alive")
        if name is not None:
            lines.append(f"event: {name}")
        lines.extend(f"data: {d}" for d in data)
        lines.append("")
    text = newline.join(lines) + (newline if lines else "")
    wire = ENCODINGS[encoding](text.encode())
    got, invalid = parse_incrementally(_chunks(wire, cuts, encoding), _header(encoding))
    assert not invalid
    assert got == reference_sse(text)


@SETTINGS
@given(
    body=st.binary(max_size=2048),
    encoding=st.sampled_from(sorted(ENCODINGS)),
    compress=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=4096), max_size=8),
)
def test_arbitrary_bytes_decode_like_the_reference_or_fail_as_documented(
    body: bytes, encoding: str, compress: bool, cuts: list[int]
) -> None:
    """Arbitrary bytes, compressed (must round-trip exactly) or claimed to be (garbage): the decoder
    yields the plain decode's bytes or raises Malformed; the parser never raises and flags bad UTF-8
    exactly when a line is not UTF-8."""
    wire = ENCODINGS[encoding](body) if compress else body
    decoder = decoding.ContentDecoder(_header(encoding))
    out: list[bytes] = []
    try:
        for chunk in _chunks(wire, cuts, encoding):
            out.extend(decoder.feed(chunk))
        decoder.finish()
    except decoding.Malformed:
        assert not compress or encoding == "identity"
        return
    decoded = b"".join(out)
    if compress or encoding == "identity":
        assert decoded == body
    parser = SSEParser()
    for chunk in _chunks(decoded, cuts):
        parser.feed(chunk)
    parser.close()
    lines = decoded.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")

    def utf8(line: bytes) -> bool:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    assert parser.invalid == (not all(utf8(line) for line in lines))


@SETTINGS
@given(
    value=st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
            ),
            max_leaves=10,
        ),
        max_size=6,
    ),
    model=st.one_of(st.none(), st.text(max_size=30)),
    stream=st.one_of(st.none(), st.booleans()),
    padding=st.integers(min_value=0, max_value=20_000),
    indent=st.sampled_from([None, 1]),
)
def test_request_scanner_agrees_with_json_loads(
    value: dict[str, Any], model: str | None, stream: bool | None, padding: int, indent: int | None
) -> None:
    if model is not None:
        value["model"] = model
    if stream is not None:
        value["stream"] = stream
    value["messages"] = [{"role": "user", "content": "x" * padding}]  # a large prompt: the scanner's case
    body = json.dumps(value, indent=indent).encode()
    expected = {k: v for k, v in json.loads(body).items() if k in ("model", "stream")}
    assert top_level_fields(body, ("model", "stream")) == expected


@SETTINGS
@given(body=st.binary(max_size=4096))
def test_request_scanner_never_raises_on_arbitrary_bytes(body: bytes) -> None:
    top_level_fields(body, ("model", "stream"))


def test_many_empty_zstd_frames_cost_linear_work() -> None:
    """One real frame then thousands of empty ones (the quadratic case): decoding gives up within a
    budget proportional to the input instead of copying the rest of the body once per frame."""
    body = backports_zstd.compress(b'{"model": "m"}') + backports_zstd.compress(b"") * 200_000
    with pytest.raises(decoding.TooLarge):
        decoding.decode(body, "zstd", limit=8 * 1024 * 1024)
    few = (
        backports_zstd.compress(b'{"model":')
        + backports_zstd.compress(b"") * 10
        + backports_zstd.compress(b'"m"}')
    )
    assert decoding.decode(few, "zstd", limit=1024) == b'{"model":"m"}'
