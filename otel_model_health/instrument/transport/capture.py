"""The request's content: captured on the span when opted in, else read for removal from error texts.

``ContentCapture`` records prompts and completions as ``gen_ai.input.messages`` /
``gen_ai.output.messages``; ``from_body`` gives the error texts of a call whose content is not captured
the request's texts to remove (``error_text``).

``ContentCapture`` is only built when content capture is on (``capture_content=True`` or the GenAI env
variable). Messages use the GenAI conventions' JSON shape (``[{"role": ..., "parts": [{"type": "text",
"content": ...}]}]``), text parts only, each attribute capped at ``MAX_ATTRIBUTE`` characters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from opentelemetry.trace import Span

from ... import semconv
from ..error_text import RequestContent, TextCollector
from .jsonfast import loads_bytes
from .requests import DIALECT_ANTHROPIC, DIALECT_GEMINI

MAX_ATTRIBUTE: Final = 16 * 1024
MAX_REQUEST_BODY: Final = 4 * 1024 * 1024


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _texts(content: Any) -> list[str]:
    """Text of a message content: a string, or blocks with ``text`` (OpenAI, Anthropic, Responses, Gemini)."""
    if isinstance(content, str):
        return [content]
    out = []
    for block in _list(content):
        text = _dict(block).get("text")
        if isinstance(text, str):
            out.append(text)
    return out


def _message(role: Any, texts: list[str]) -> dict[str, Any]:
    return {
        "role": role if isinstance(role, str) else "user",
        "parts": [{"type": "text", "content": t} for t in texts],
    }


def input_messages(body: Any, dialect: str) -> list[dict[str, Any]]:
    body = _dict(body)
    out: list[dict[str, Any]] = []
    if dialect == DIALECT_GEMINI:
        for raw in _list(body.get("contents")):
            item = _dict(raw)
            out.append(_message(item.get("role"), _texts(item.get("parts"))))
        return out
    system = body.get("system") if dialect == DIALECT_ANTHROPIC else body.get("instructions")
    if system:
        out.append(_message("system", _texts(system)))
    for raw in _list(body.get("messages")):
        item = _dict(raw)
        out.append(_message(item.get("role"), _texts(item.get("content"))))
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        out.append(_message("user", [prompt]))
    responses_input = body.get("input")
    if isinstance(responses_input, str) and "messages" not in body:
        out.append(_message("user", [responses_input]))
    else:
        for raw in _list(responses_input):
            item = _dict(raw)
            if "role" in item:
                out.append(_message(item.get("role"), _texts(item.get("content"))))
    return out


def output_texts(body: Any, dialect: str) -> list[str]:
    body = _dict(body)
    if dialect == DIALECT_GEMINI:
        return [
            "".join(_texts(_dict(_dict(c).get("content")).get("parts")))
            for c in _list(body.get("candidates"))
        ]
    if dialect == DIALECT_ANTHROPIC:
        return ["".join(_texts(body.get("content")))]
    choices = _list(body.get("choices"))
    if choices:
        out = []
        for raw in choices:
            choice = _dict(raw)
            text = choice.get("text")
            if not isinstance(text, str):
                text = "".join(_texts(_dict(choice.get("message")).get("content")))
            out.append(text)
        return out
    output = _list(body.get("output"))  # Responses API
    return ["".join("".join(_texts(_dict(item).get("content"))) for item in output)] if output else []


def _cap(text: str) -> str:
    return text if len(text) <= MAX_ATTRIBUTE else text[:MAX_ATTRIBUTE]


class ContentCapture:
    """Collects one call's messages; ``emit`` sets the attributes on the span before it ends."""

    __slots__ = ("_dialect", "_output", "_request", "_stream_size", "_stream_text")

    def __init__(self, request_body: bytes | None, dialect: str) -> None:
        self._request = request_body if request_body and len(request_body) <= MAX_REQUEST_BODY else None
        self._dialect = dialect
        self._output: list[str] | None = None
        self._stream_text: list[str] = []
        self._stream_size = 0

    def response_body(self, body: Any) -> None:
        self._output = output_texts(body, self._dialect)

    def stream_event(self, event: Any, name: str | None) -> None:
        if self._stream_size >= MAX_ATTRIBUTE:
            return
        text = _stream_delta(_dict(event), self._dialect)
        if text:
            self._stream_text.append(text)
            self._stream_size += len(text)

    def emit(self, span: Span, finish_reasons: Sequence[str]) -> None:
        if not span.is_recording():
            return
        if self._request is not None:
            try:
                messages = input_messages(json.loads(self._request), self._dialect)
            except ValueError:
                messages = []
            if messages:
                span.set_attribute(semconv.GEN_AI_INPUT_MESSAGES, _cap(json.dumps(messages)))
        outputs = self._output if self._output is not None else ["".join(self._stream_text)]
        if outputs and any(outputs):
            messages = []
            for i, text in enumerate(outputs):
                message = _message("assistant", [text])
                if i < len(finish_reasons):
                    message["finish_reason"] = finish_reasons[i]
                messages.append(message)
            span.set_attribute(semconv.GEN_AI_OUTPUT_MESSAGES, _cap(json.dumps(messages)))


def _stream_delta(event: dict[str, Any], dialect: str) -> str | None:
    if dialect == DIALECT_GEMINI:
        texts = output_texts(event, dialect)
        return texts[0] if texts else None
    kind = event.get("type")
    if kind == "content_block_delta":
        text = _dict(event.get("delta")).get("text")
        return text if isinstance(text, str) else None
    if kind == "response.output_text.delta":
        delta = event.get("delta")
        return delta if isinstance(delta, str) else None
    choices = _list(event.get("choices"))
    if choices:
        choice = _dict(choices[0])
        text = choice.get("text")
        if isinstance(text, str):
            return text
        content = _dict(choice.get("delta")).get("content")
        return content if isinstance(content, str) else None
    return None


def from_body(body: bytes | None) -> RequestContent:
    """The content of a JSON request body (the transport's). A body over the cap cannot be read: no
    message text is then kept (``complete=False``); a body that is not JSON counts as content whole."""
    if not body:
        return RequestContent([])
    if len(body) > MAX_REQUEST_BODY:
        return RequestContent([], complete=False)
    try:
        parsed = loads_bytes(body)
    except (ValueError, RecursionError):
        return RequestContent([body.decode("utf-8", "replace")])
    collector = TextCollector()
    collector.walk(parsed, False)
    return RequestContent(collector.texts)
