"""JSON from outside the process (a scenario file, a /health answer), parsed within fixed limits.

Python's ``json`` accepts things that break the code reading the result: ``NaN`` / ``Infinity`` and
numbers like ``1e400`` (infinite floats), integers of thousands of digits, and nesting deep enough to
exhaust the stack (``RecursionError``) here or later, when the document is printed again. ``loads``
refuses all of them with a ``JSONInputError`` whose message is one line.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

MAX_DEPTH: Final = 32  # the documents read here are 3 or 4 levels deep
MAX_INT_DIGITS: Final = 18


class JSONInputError(ValueError):
    """The input is not JSON within the limits; the message says why."""


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JSONInputError(f"number too large: {text[:20]}… ({len(text)} digits)")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONInputError(f"number out of range: {text[:20]}")
    return value


def _constant(name: str) -> Any:
    raise JSONInputError(f"{name} is not a JSON number")


def loads(data: bytes, *, max_bytes: int) -> Any:
    """The document in ``data`` (UTF-8, a leading BOM allowed). Raises ``JSONInputError``."""
    if len(data) > max_bytes:
        raise JSONInputError(f"larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JSONInputError(f"not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})") from None
    try:
        document = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise JSONInputError(f"nested deeper than {MAX_DEPTH} levels") from None
    _check_depth(document)
    return document


def _check_depth(document: Any) -> None:
    """Iterative, so that checking a deep document cannot itself exhaust the stack."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            if depth > MAX_DEPTH:
                raise JSONInputError(f"nested deeper than {MAX_DEPTH} levels")
            stack.extend((item, depth + 1) for item in value)
