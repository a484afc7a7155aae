"""A bounded copy of a response body, decompressed within a cap, and parsed as JSON.

The transport sees the body as it came off the wire (httpx decodes ``Content-Encoding`` later, in the
caller's ``Response``), so gzip/deflate/br/zstd are undone here on our own copy (``decoding``). Every step
is capped, so a compressed bomb or a huge body costs at most ``MAX_DECODED`` bytes and is then ignored.
"""

from __future__ import annotations

from typing import Any, Final

from . import decoding, jsonfast
from .decoding import Malformed, TooLarge, Unsupported

__all__ = [
    "MAX_DECODED",
    "MAX_RAW",
    "BodyCopy",
    "Malformed",
    "TooLarge",
    "Unsupported",
    "decode",
    "parse_json",
]

MAX_RAW: Final = 8 * 1024 * 1024  # bytes kept of the body as received
MAX_DECODED: Final = 8 * 1024 * 1024  # bytes allowed after decompression


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


def decode(data: bytes, content_encoding: str | None) -> bytes:
    """Undo ``Content-Encoding`` within ``MAX_DECODED``. Corrupt compressed data raises ``Malformed``: the
    client will fail to decode it too."""
    return decoding.decode(data, content_encoding, limit=MAX_DECODED)


def parse_json(data: bytes) -> Any:
    try:
        return jsonfast.loads_bytes(data)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too deeply nested
        raise Malformed from exc
