"""``json.loads`` with less Python around it, for the per-call and per-chunk parses.

``json.loads`` of a small document spends a third of its time in Python: two frames and two whitespace
regex matches around the C scanner. ``loads`` calls the scanner (``JSONDecoder().scan_once``, an
undocumented attribute of every CPython since 2.6) directly. Anything but one value spanning the whole
text is handed to ``json.loads``, so what parses, and what fails with ``ValueError``, is exactly what
``json.loads`` decides. A document nested too deeply for the parser (``RecursionError``, as the caller's
own ``json.loads`` meets it) is a ``ValueError`` here: to us it is a body that does not parse.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

_UTF8_BOM: Final = b"\xef\xbb\xbf"


def _make_loads() -> Callable[[str], Any]:
    scan = getattr(json.JSONDecoder(), "scan_once", None)
    if not callable(scan):
        return _json_loads

    def loads(text: str) -> Any:
        try:
            obj, end = scan(text, 0)
        except StopIteration:  # no value at 0 (leading whitespace, a BOM, nothing): json.loads decides
            return _json_loads(text)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc
        if end != len(text):  # trailing whitespace or garbage: json.loads decides
            return _json_loads(text)
        return obj

    return loads


def _json_loads(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


loads: Final = _make_loads()


def loads_bytes(data: bytes) -> Any:
    """``json.loads(data)`` for a body: UTF-8 without a BOM (what APIs send) takes ``loads``; anything
    else (a BOM, UTF-16/32, invalid UTF-8) goes to ``json.loads``, which detects the encoding."""
    if not data.startswith(_UTF8_BOM):
        try:
            return loads(data.decode("utf-8"))
        except ValueError:  # includes UnicodeDecodeError
            pass
    return _json_loads(data)
