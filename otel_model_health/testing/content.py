"""What a simulated answer says: the text pieces, token counts and ids, shared by every wire format."""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

_TEXT: Final = (
    "The simulated provider answers every request with this steady text so tests can count chunks and tokens "
    "without caring what a model would say"
)
_WORDS: Final = tuple(_TEXT.split(" "))

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    """Provider-style ids: a prefix, a counter (unique per process) and some randomness."""
    return f"{prefix}{next(_ids):06d}{secrets.token_hex(6)}"


def sse(data: Mapping[str, Any] | str, event: str | None = None) -> bytes:
    """One server-sent event. Compact JSON keeps a 200-chunk stream small."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


@dataclass(slots=True)
class StreamBody:
    """A stream split where faults cut it: setup events, one event per content chunk, the closing events
    (finish reason, usage) and the terminal event whose absence marks an incomplete stream."""

    preamble: list[bytes] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    epilogue: list[bytes] = field(default_factory=list)
    terminal: list[bytes] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Content:
    """The answer's text, cut into ``len(pieces)`` chunks, and its token usage."""

    model: str
    pieces: tuple[str, ...]
    truncated: bool  # max tokens reached: finish_reason "length" / stop_reason "max_tokens"
    input_tokens: int
    created: int

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def output_tokens(self) -> int:
        return len(self.pieces)


def _text_of(value: Any) -> str:
    """All strings inside a request's messages/prompt/input, to estimate input tokens."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return " ".join(_text_of(v) for v in value.values())
    if isinstance(value, list | tuple):
        return " ".join(_text_of(v) for v in value)
    return ""


def estimate_tokens(body: Mapping[str, Any], keys: tuple[str, ...]) -> int:
    """About four characters a token, like the providers' own rule of thumb; at least 1."""
    text = " ".join(_text_of(body.get(key)) for key in keys)
    return max(1, len(text) // 4)


def make_content(
    *, model: str, chunks: int, max_tokens: Any, input_tokens: int, now: Callable[[], float] = time.time
) -> Content:
    limit = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None
    n = max(1, chunks)
    truncated = limit is not None and limit < n
    if limit is not None:
        n = min(n, limit)
    pieces = tuple((" " if i else "") + _WORDS[i % len(_WORDS)] for i in range(n))
    return Content(
        model=model, pieces=pieces, truncated=truncated, input_tokens=input_tokens, created=int(now())
    )
