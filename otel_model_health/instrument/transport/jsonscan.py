"""Read a few top-level fields of a JSON object without parsing the rest (a 1 MB prompt, 5 MB of vectors).

SDKs put the small fields on either side of the big one: openai writes ``{"model": ..., "stream": ...,
"messages": [...]}``, anthropic ``{"max_tokens": ..., "messages": [...], "model": ..., "stream": ...}``.

1. Forward: walk the object's first keys within a 4 KiB head; stop at the first container value that is
   not wanted (it may be the big one).
2. Backward: ``rfind`` the key's quoted name. A hit counts only if it is preceded by ``{`` or ``,`` (an
   unescaped quote there opens a key: inside a string a quote is always escaped) and the object that
   follows it ends at the very end of the body: walking ``"key": value, "k2": v2 ... }`` with the C
   decoder, nothing but whitespace may follow the ``}``. A ``"model"`` key nested in a tool schema or a
   tool call's input ends its object early and is rejected; a ``"model"`` inside message text is escaped
   and never even found.
3. If neither settles it within a few candidates: ``json.loads`` of the body, if it is at most 8 MiB.

A body that fits in the head window is parsed whole at once: below about 4 KiB the C parser is faster than
the walk.

Every step is exact for valid JSON; the heuristics only decide how much work it takes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Final

from . import jsonfast

_DECODER: Final = json.JSONDecoder()
# The C string scanner of the json module (not in typeshed): (text, index after the opening quote) →
# (decoded string, index after the closing quote).
scanstring: Final[Callable[[str, int], tuple[str, int]]] = json.decoder.scanstring  # type: ignore[attr-defined]
_WS: Final = re.compile(r"[ \t\n\r]*")
_HEAD_WINDOW: Final = 4096
_MAX_WALKS: Final = 4
_MAX_HITS: Final = 256
MAX_FALLBACK_BYTES: Final = 8 * 1024 * 1024
_OPENERS: Final = (ord("{"), ord(","))
_WS_BYTES: Final = frozenset(b" \t\r\n")


class _Stop(Exception):
    """The forward walk cannot go on cheaply."""


def _ws(s: str, i: int) -> int:
    match = _WS.match(s, i)
    return match.end() if match is not None else i


def _forward(body: bytes, keys: tuple[str, ...], found: dict[str, Any]) -> bool:
    """Walk the head of the object. True when the whole object was walked (absent keys are absent)."""
    truncated = len(body) > _HEAD_WINDOW
    s = body[:_HEAD_WINDOW].decode("utf-8", "ignore")
    try:
        i = _ws(s, 0)
        if s[i] != "{":
            raise _Stop
        i = _ws(s, i + 1)
        if s[i] == "}":
            return True
        while True:
            if s[i] != '"':
                raise _Stop
            key, i = scanstring(s, i + 1)
            i = _ws(s, i)
            if s[i] != ":":
                raise _Stop
            i = _ws(s, i + 1)
            if key in keys:
                value, i = _DECODER.raw_decode(s, i)
                if truncated and i >= len(s):
                    raise _Stop  # a number cut by the window would read wrong
                found.setdefault(key, value)
            elif s[i] in "[{":
                raise _Stop
            else:
                _, i = _DECODER.raw_decode(s, i)
            i = _ws(s, i)
            if s[i] == ",":
                i = _ws(s, i + 1)
                continue
            if s[i] == "}":
                return True
            raise _Stop
    except (_Stop, IndexError, ValueError, RecursionError):  # deep nesting: give up, do not fail
        return False


def _walk_tail(s: str, keys: tuple[str, ...]) -> dict[str, Any] | None:
    """``s`` starts at a key. The wanted fields up to the object's end, if that end is the text's end."""
    out: dict[str, Any] = {}
    i = 0
    try:
        while True:
            key, i = scanstring(s, i + 1)
            i = _ws(s, i)
            if s[i] != ":":
                return None
            value, i = _DECODER.raw_decode(s, _ws(s, i + 1))
            if key in keys:
                out[key] = value
            i = _ws(s, i)
            if s[i] == ",":
                i = _ws(s, i + 1)
                if s[i] != '"':
                    return None
                continue
            if s[i] == "}":
                return out if _ws(s, i + 1) == len(s) else None
            return None
    except (IndexError, ValueError, RecursionError):
        return None


def _backward(body: bytes, key: str, keys: tuple[str, ...], found: dict[str, Any]) -> bool:
    """Find ``key`` from the end. False when it gave up (too many candidates)."""
    pattern = b'"' + key.encode() + b'"'
    end = len(body)
    walks = hits = 0
    while True:
        p = body.rfind(pattern, 0, end)
        if p == -1:
            return True  # not a top-level key
        end = p
        hits += 1
        if hits > _MAX_HITS:
            return False
        q = p - 1
        while q >= 0 and body[q] in _WS_BYTES:
            q -= 1
        if q < 0 or body[q] not in _OPENERS:
            continue
        walks += 1
        if walks > _MAX_WALKS:
            return False
        try:
            tail = body[p:].decode("utf-8")
        except UnicodeDecodeError:
            return False
        fields = _walk_tail(tail, keys)
        if fields is not None:
            for name, value in fields.items():
                found.setdefault(name, value)
            return True


def top_level_fields(body: bytes, keys: tuple[str, ...]) -> dict[str, Any]:
    """The values of ``keys`` that are top-level fields of the JSON object ``body``; absent ones missing."""
    if len(body) <= _HEAD_WINDOW:
        return _parse_whole(body, keys)
    found: dict[str, Any] = {}
    if _forward(body, keys, found):
        return found
    for key in keys:
        if key in found:
            continue
        if not _backward(body, key, keys, found):
            return _parse_whole(body, keys)
    return found


def _parse_whole(body: bytes, keys: tuple[str, ...]) -> dict[str, Any]:
    if len(body) > MAX_FALLBACK_BYTES:
        return {}
    try:
        obj = jsonfast.loads_bytes(body)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(obj, dict):
        return {}
    return {k: obj[k] for k in keys if k in obj}
