"""``Content-Encoding`` undone incrementally, on our copy of the bytes, as the client undoes it.

The transport sees a body as it came off the wire; the client decodes it later, in its ``Response``. To
judge what the caller got (is the JSON valid? did the event stream end with its terminal event?) we
decode the same bytes: whole bodies once at the end, event streams chunk by chunk as the caller reads.

Bounded: every step yields at most ``PIECE`` decoded bytes at a time (a compression bomb never sits in
memory whole), and the copying that multi-frame zstd costs is capped relative to the input (a body of
thousands of empty frames would otherwise cost quadratic time). Corrupt data raises ``Malformed`` (the
client fails on it too); an encoding we cannot decode raises ``Unsupported``; the work cap ``TooLarge``.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable, Iterator
from typing import Any, Final, Protocol

PIECE: Final = 1024 * 1024  # decoded bytes produced per step
_ZSTD_COPY_ALLOWANCE: Final = 64 * 1024  # bytes of frame remainders copied per chunk, beyond 4 × its size

_brotli: Any
try:  # br only when a brotli module is importable (httpx itself needs one to decode br)
    import brotli as _brotli  # type: ignore[import-untyped,no-redef,unused-ignore]
except ImportError:  # pragma: no cover - depends on the environment
    try:
        import brotlicffi as _brotli  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError:
        _brotli = None

# zstd: the decompressor httpx2 uses (compression.zstd from Python 3.14, else backports.zstd), or the one
# httpx uses (zstandard). Each client asks for zstd only when its module is installed.
_ZstdDecompressor: Any = None
_zstandard: Any = None
try:
    from compression.zstd import (  # type: ignore[import-not-found,no-redef,unused-ignore]
        ZstdDecompressor as _ZstdDecompressor,
    )
except ImportError:
    with contextlib.suppress(ImportError):  # depends on the environment
        from backports.zstd import (  # type: ignore[import-not-found,no-redef,unused-ignore]
            ZstdDecompressor as _ZstdDecompressor,
        )
with contextlib.suppress(ImportError):  # depends on the environment
    import zstandard as _zstandard  # type: ignore[import-not-found,no-redef,unused-ignore]


class Malformed(Exception):
    """The body is not what it claims to be: corrupt compression, or not JSON."""


class TooLarge(Exception):
    """The body exceeds a cap: not parsed, not judged."""


class Unsupported(Exception):
    """An encoding we cannot decode here."""


class _Step(Protocol):
    """One coding undone incrementally."""

    def feed(self, data: bytes, /) -> Iterator[bytes]: ...

    def finish(self) -> None:
        """The input ended: raise ``Malformed`` when it ended mid-stream."""


class _Zlib:
    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._d = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback  # deflate: zlib-wrapped per the RFC, raw as some servers send
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            out = self._d.decompress(data, PIECE)
        except zlib.error:
            if not (self._raw_fallback and not self._started):
                raise
            self._d = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._d.decompress(data, PIECE)
        self._started = self._started or bool(data)  # httpx's decoder likewise tries raw on the first bytes
        yield out
        while self._d.unconsumed_tail:
            yield self._d.decompress(self._d.unconsumed_tail, PIECE)

    def finish(self) -> None:
        """A cut gzip/deflate stream is not an error to the clients (their flush does not check the
        trailer): what was decoded is judged as it stands."""


class _Brotli:
    def __init__(self) -> None:
        if _brotli is None:
            raise Unsupported("br")
        self._d = _brotli.Decompressor()
        self._bounded = hasattr(self._d, "can_accept_more_data")

    def feed(self, data: bytes) -> Iterator[bytes]:
        d = self._d
        if not self._bounded:  # brotlicffi: no output limit
            yield d.process(data)
            return
        yield d.process(data, output_buffer_limit=PIECE)
        while not d.can_accept_more_data():
            yield d.process(b"", output_buffer_limit=PIECE)

    def finish(self) -> None:
        """A cut brotli stream decodes as far as it goes; the JSON parse then judges it."""


class _Zstd:
    """One or more zstd frames (a streaming server may flush one per event)."""

    def __init__(self) -> None:
        if _ZstdDecompressor is None and _zstandard is None:
            raise Unsupported("zstd")
        self._d = self._new()
        self._in_frame = False

    @staticmethod
    def _new() -> Any:
        if _ZstdDecompressor is not None:
            return _ZstdDecompressor()
        return _zstandard.ZstdDecompressor().decompressobj()

    def feed(self, data: bytes) -> Iterator[bytes]:
        allowance = 4 * len(data) + _ZSTD_COPY_ALLOWANCE
        bounded = _ZstdDecompressor is not None
        while data:
            self._in_frame = True
            d = self._d
            if bounded:
                yield d.decompress(data, PIECE)
                while not (d.eof or d.needs_input):
                    yield d.decompress(b"", PIECE)
            else:  # zstandard has no output limit; httpx's own decoder is just as unbounded
                yield d.decompress(data)
            if not d.eof:
                return
            self._in_frame = False
            data = d.unused_data  # a copy of the rest: capped, or many tiny frames cost n²
            allowance -= len(data)
            if allowance < 0:
                raise TooLarge("too many zstd frames")
            self._d = self._new()

    def finish(self) -> None:
        if self._in_frame:  # httpx(2)'s zstd decoders raise on an incomplete frame too
            raise Malformed("truncated zstd data")


def _step(coding: str) -> _Step | None:
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if coding == "deflate":
        return _Zlib(zlib.MAX_WBITS, raw_fallback=True)
    if coding == "br":
        return _Brotli()
    if coding == "zstd":
        return _Zstd()
    raise Unsupported(coding)


class ContentDecoder:
    """Undoes a ``Content-Encoding`` header's codings (applied in order, so undone in reverse)."""

    __slots__ = ("_steps",)

    def __init__(self, content_encoding: str | None) -> None:
        steps = [_step(c.strip().lower()) for c in reversed((content_encoding or "").split(","))]
        self._steps = [s for s in steps if s is not None]

    @property
    def identity(self) -> bool:
        return not self._steps

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of the next raw chunk, in pieces of at most ``PIECE`` bytes."""
        pieces: Iterator[bytes] = iter((data,))
        for step in self._steps:
            pieces = _through(step, pieces)
        return pieces

    def finish(self) -> None:
        for step in self._steps:
            _guard(step.finish)


def _through(step: _Step, pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        try:
            for out in step.feed(piece):
                if out:
                    yield out
        except (TooLarge, Unsupported, Malformed):
            raise
        except Exception as exc:  # zlib.error, brotli.error, zstd's errors: the client fails on them too
            raise Malformed from exc


def _guard(finish: Callable[[], None]) -> None:
    try:
        finish()
    except Malformed:
        raise
    except Exception as exc:
        raise Malformed from exc


def decode(data: bytes, content_encoding: str | None, *, limit: int) -> bytes:
    """A whole body decoded, at most ``limit`` bytes (``TooLarge`` past that)."""
    decoder = ContentDecoder(content_encoding)
    if decoder.identity:
        if len(data) > limit:
            raise TooLarge
        return data
    out: list[bytes] = []
    size = 0
    for piece in decoder.feed(data):
        size += len(piece)
        if size > limit:
            raise TooLarge
        out.append(piece)
    decoder.finish()
    return b"".join(out)


def decodes_so_far(chunks: list[bytes], content_encoding: str | None) -> bool:
    """False when the bytes received so far are already corrupt for their encoding (the client fails on
    them); True when they decode, or may once the rest arrives. Used when a body ended early."""
    try:
        decoder = ContentDecoder(content_encoding)
        for chunk in chunks:
            for _ in decoder.feed(chunk):
                pass
    except Malformed:
        return False
    except (TooLarge, Unsupported):
        return True
    return True
