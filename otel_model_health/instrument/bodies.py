"""A bounded copy of a response body, decompressed within a cap, and parsed as JSON.

The transport sees the body as it came off the wire (httpx decodes ``Content-Encoding`` later, in the
caller's ``Response``), so gzip/deflate/br/zstd are undone here on our own copy. Every step is capped, so a
compressed bomb or a huge body costs at most ``MAX_DECODED`` bytes and is then ignored.
"""

from __future__ import annotations

import contextlib
import io
import zlib
from typing import Any, Final

from . import jsonfast

MAX_RAW: Final = 8 * 1024 * 1024  # bytes kept of the body as received
MAX_DECODED: Final = 8 * 1024 * 1024  # bytes allowed after decompression

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


class TooLarge(Exception):
    """The body exceeds a cap: not parsed, not judged."""


class Unsupported(Exception):
    """An encoding we cannot decode here."""


class BodyCopy:
    """References to the chunks the caller reads, up to ``MAX_RAW`` bytes (no copying until the end)."""

    __slots__ = ("chunks", "overflow", "size")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.overflow = False

    def add(self, chunk: bytes) -> None:
        if self.overflow:
            return
        self.size += len(chunk)
        if self.size > MAX_RAW:
            self.overflow = True
            self.chunks = []
            return
        self.chunks.append(chunk)

    def data(self) -> bytes:
        if self.overflow:
            raise TooLarge
        return b"".join(self.chunks)


def _zlib(data: bytes, wbits: int) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    out = decompressor.decompress(data, MAX_DECODED)
    if decompressor.unconsumed_tail:
        raise TooLarge
    return out


def _deflate(data: bytes) -> bytes:
    try:
        return _zlib(data, zlib.MAX_WBITS)
    except zlib.error:
        return _zlib(data, -zlib.MAX_WBITS)  # raw deflate, as some servers send it


def _br(data: bytes) -> bytes:
    if _brotli is None:
        raise Unsupported("br")
    decompressor = _brotli.Decompressor()
    out: bytes = decompressor.process(data, output_buffer_limit=MAX_DECODED + 1)
    if len(out) > MAX_DECODED:
        raise TooLarge
    return out


def _zstd(data: bytes) -> bytes:
    """One or more zstd frames, within ``MAX_DECODED``; truncated data raises ValueError (malformed)."""
    if _ZstdDecompressor is not None:
        out = b""
        while data:
            decompressor = _ZstdDecompressor()
            out += decompressor.decompress(data, MAX_DECODED + 1 - len(out))
            if len(out) > MAX_DECODED or not (decompressor.eof or decompressor.needs_input):
                raise TooLarge
            if not decompressor.eof:
                raise ValueError("truncated zstd data")
            data = decompressor.unused_data
        return out
    if _zstandard is not None:
        reader = _zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
        decoded: bytes = reader.read(MAX_DECODED + 1)
        if len(decoded) > MAX_DECODED:
            raise TooLarge
        return decoded  # truncated data reads short: the JSON parse then finds it malformed
    raise Unsupported("zstd")


class Malformed(Exception):
    """The body is not what it claims to be: corrupt compression, or not JSON."""


def decode(data: bytes, content_encoding: str | None) -> bytes:
    """Undo ``Content-Encoding`` (applied in order, so undone in reverse), within ``MAX_DECODED``.
    Corrupt compressed data raises ``Malformed``: the client will fail to decode it too."""
    if content_encoding:
        for coding in reversed([c.strip().lower() for c in content_encoding.split(",")]):
            if coding in ("", "identity"):
                continue
            try:
                if coding in ("gzip", "x-gzip"):
                    data = _zlib(data, zlib.MAX_WBITS | 16)
                elif coding == "deflate":
                    data = _deflate(data)
                elif coding == "br":
                    data = _br(data)
                elif coding == "zstd":
                    data = _zstd(data)
                else:
                    raise Unsupported(coding)
            except (TooLarge, Unsupported):
                raise
            except Exception as exc:  # zlib.error, brotli.error
                raise Malformed from exc
    if len(data) > MAX_DECODED:
        raise TooLarge
    return data


def parse_json(data: bytes) -> Any:
    try:
        return jsonfast.loads_bytes(data)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise Malformed from exc
