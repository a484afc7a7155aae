"""Error texts without the request's content, for calls whose content is not captured.

A provider that rejects a request often quotes it: OpenAI's 400 ``'<the prompt>' is not of type
'array'``, a FastAPI server's 422 with the whole input. Error texts leave the process (span status,
exception event, the registry's last error and so snapshots, transitions, ``/health`` and Sentry), so with
content capture off every error text of a call goes through ``RequestContent``:

* the texts of the request (message contents, prompt, input, system / instructions, tool arguments) are
  collected the first time an error needs them, bounded: from the JSON request body (transport) or the
  call's arguments (decorators);
* every run of ``MIN_RUN`` or more characters a message shares with one of them is replaced by
  ``CONTENT_REMOVED``, and so is a whole text of ``MIN_WHOLE`` or more characters, or a shorter one in
  quotes;
* an SDK error with a JSON body is cut to ``Class: type/code: message``; the rest of the body is dropped.

Runs are found with a sampled index: the texts' ``GRAM``-character pieces at every ``GRAM``-th position.
A shared run of ``2 * GRAM - 1`` characters or more always contains one of them, so every run of
``MIN_RUN`` is found; the cost is one dict lookup per character of the message. See docs/privacy.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, Final

from .._internal import guarded

CONTENT_REMOVED: Final = "[content removed]"
GRAM: Final = 6
MIN_RUN: Final = 2 * GRAM  # a run this long always holds a sampled piece (2 * GRAM - 1 would do)
MIN_WHOLE: Final = 4
_MAX_TEXT: Final = 2048  # characters of an error text looked at (scrub() reads 2 * 1024)
_WHOLE_TEXT: Final = 16 * 1024  # a longer text is indexed by its head and tail
_HEAD_TAIL: Final = 8 * 1024
_BUDGET: Final = 128 * 1024  # characters indexed per call, variants included
_MAX_NODES: Final = 10_000  # JSON values / argument objects walked
_MAX_DEPTH: Final = 32
_MAX_HITS: Final = 8  # positions kept per piece (repeated text)
_MAX_CHAIN: Final = 8  # chained exceptions whose messages are cleaned in a stack trace
_QUOTES: Final = ("'", '"', "`")

# Keys whose string values (or lists of strings) are request content, wherever they are in the body:
# OpenAI messages / prompt / input / instructions / tool-call arguments, Anthropic system and blocks,
# Gemini contents' parts, embeddings' input.
_TEXT_KEYS: Final = frozenset(
    {"content", "text", "prompt", "input", "system", "instructions", "arguments", "query", "documents"}
)


class RequestContent:
    """The content of one request, indexed for removal from error texts."""

    __slots__ = ("_complete", "_index", "_short", "_texts")

    def __init__(self, texts: list[str], *, complete: bool = True) -> None:
        # ``complete`` is False when the request could not be read (a body over the cap): then no
        # message text is kept at all, only the error's type.
        self._complete = complete
        self._texts: list[str] = []
        self._short: list[str] = []
        self._index: dict[str, list[tuple[int, int]]] = {}
        budget = _BUDGET
        for text in _pieces(texts):
            if len(text) < MIN_RUN:
                self._short.append(text)
            elif budget > 0:
                self._add(text[:budget])
                budget -= len(text)

    def _add(self, text: str) -> None:
        number = len(self._texts)
        self._texts.append(text)
        index = self._index
        for pos in range(0, len(text) - GRAM + 1, GRAM):
            hits = index.setdefault(text[pos : pos + GRAM], [])
            if len(hits) < _MAX_HITS:
                hits.append((number, pos))

    def clean(self, message: str) -> str:
        """``message`` (cut to ``_MAX_TEXT``) without any of the request's content."""
        if not self._complete:
            return ""
        message = message[:_MAX_TEXT]
        spans = self._shared_runs(message) + self._whole_texts(message)
        return _remove(message, spans) if spans else message

    def describe(self, exc: BaseException) -> str:
        """``Class: message`` of an exception, cut and cleaned (``describe_exception``'s shape)."""
        text = self.exception_message(exc)
        name = type(exc).__name__
        return f"{name}: {text}" if text else name

    def exception_message(self, exc: BaseException) -> str:
        """The message of ``exc``: for an SDK error with a JSON body, its type or code and message."""
        error = _body_error(exc)
        if error is not None:
            code, message = error
            text = self.clean(message) if message else ""
            return f"{code}: {text}" if code and text else code or text
        try:
            raw = str(exc)
        except Exception:
            return ""
        return self.clean(raw)

    def clean_stacktrace(self, exc: BaseException, stacktrace: str) -> str:
        """The stack trace with every chained exception's message replaced by its cleaned form."""
        for link in _chain(exc):
            try:
                raw = str(link)
            except Exception:
                continue
            if raw and raw in stacktrace:
                stacktrace = stacktrace.replace(raw, self.exception_message(link))
        return stacktrace

    def _shared_runs(self, message: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        index = self._index
        if not index:
            return spans
        texts = self._texts
        get = index.get
        covered = 0
        for i in range(len(message) - GRAM + 1):
            # A piece inside a removed run finds nothing new, unless its run goes on past the end (a
            # run reaching GRAM characters past it holds a sampled piece beyond): skip to there.
            if i + GRAM <= covered:
                continue
            hits = get(message[i : i + GRAM])
            if hits is None:
                continue
            for number, pos in hits:
                text = texts[number]
                start, end = i, i + GRAM
                left, right = pos, pos + GRAM
                while start > 0 and left > 0 and message[start - 1] == text[left - 1]:
                    start -= 1
                    left -= 1
                while end < len(message) and right < len(text) and message[end] == text[right]:
                    end += 1
                    right += 1
                if end - start >= MIN_RUN:
                    spans.append((start, end))
                    covered = max(covered, end)
        return spans

    def _whole_texts(self, message: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        for text in self._short:
            if len(text) >= MIN_WHOLE:
                spans.extend(_occurrences(message, text))
            else:  # a short text only in quotes: ``'hi' is not of type 'array'``
                for quote in _QUOTES:
                    spans.extend((s + 1, e - 1) for s, e in _occurrences(message, f"{quote}{text}{quote}"))
        return spans


def _occurrences(message: str, text: str) -> Iterator[tuple[int, int]]:
    start = message.find(text)
    while start != -1:
        yield start, start + len(text)
        start = message.find(text, start + len(text))


def _remove(message: str, spans: list[tuple[int, int]]) -> str:
    pieces: list[str] = []
    last = 0
    for start, end in sorted(spans):
        if end <= last:
            continue
        if start > last:
            pieces.append(message[last:start])
            pieces.append(CONTENT_REMOVED)
        elif not pieces or pieces[-1] != CONTENT_REMOVED:
            pieces.append(CONTENT_REMOVED)
        last = end
    pieces.append(message[last:])
    return "".join(pieces)


def _pieces(texts: list[str]) -> Iterator[str]:
    """Each text (its head and tail if long), and the forms an error message may quote it in: JSON- and
    Python-escaped. A provider quotes the start of a long text, or its whole; the middle of a 100 KB
    prompt is not indexed, to bound the work on the error path."""
    seen: set[str] = set()
    for text in texts:
        parts = (text,) if len(text) <= _WHOLE_TEXT else (text[:_HEAD_TAIL], text[-_HEAD_TAIL:])
        for part in parts:
            for variant in (part, json.dumps(part, ensure_ascii=False)[1:-1], repr(part)[1:-1]):
                if variant and variant not in seen:
                    seen.add(variant)
                    yield variant


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _body_error(exc: BaseException) -> tuple[str, str] | None:
    """(type or code, message) of an SDK error whose ``body`` is the provider's JSON error: OpenAI's
    ``body`` is the ``error`` object, Anthropic's the whole document."""
    body = getattr(exc, "body", None)
    if not isinstance(body, dict):
        return None
    error = body.get("error", body)
    if not isinstance(error, dict):
        return None
    code = error.get("type") or error.get("code")
    message = error.get("message")
    if not isinstance(message, str):
        message = ""
    return (str(code)[:64] if code else ""), message


# -- collecting a request's texts ---------------------------------------------------------------------


class TextCollector:
    """Strings found under text keys of a request's values, bounded in nodes and depth."""

    __slots__ = ("nodes", "texts")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.nodes = 0

    def walk(self, value: Any, is_text: bool, depth: int = 0) -> None:
        """Strings under a text key (``is_text``), found anywhere in dicts, lists and SDK objects."""
        self.nodes += 1
        if self.nodes > _MAX_NODES or depth > _MAX_DEPTH:
            return
        if isinstance(value, str):
            if is_text and value:
                self.texts.append(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self.walk(item, is_text, depth + 1)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.walk(item, key in _TEXT_KEYS, depth + 1)
        elif value is not None and not isinstance(value, (int, float, bytes)):
            fields = getattr(value, "__dict__", None)  # SDK objects: pydantic models, dataclasses
            if isinstance(fields, dict):
                self.walk(fields, False, depth + 1)


ContentSource = Callable[[], "RequestContent | None"]


def load(source: ContentSource) -> RequestContent | None:
    """Run a measurement's content source; never raises. An internal error keeps no message text."""
    with guarded("error_text.load"):
        return source()
    return RequestContent([], complete=False)
