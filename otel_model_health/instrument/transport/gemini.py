"""Gemini (Generative Language / Vertex) response bodies and stream chunks into a ``ResponseInfo``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..responses import ResponseInfo

_MAX_TEXT = 256


def _text(value: object) -> str | None:
    return value[:_MAX_TEXT] if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _is_mapping(value: object) -> bool:
    # Decoded JSON is a dict: checked before the (slow) ABC test, once per stream chunk.
    return type(value) is dict or isinstance(value, Mapping)


def read_gemini(body: Any, info: ResponseInfo) -> None:
    """A GenerateContentResponse (or one streamed chunk of it, or the JSON array of a non-SSE stream)."""
    if isinstance(body, list):
        for item in body:
            read_gemini(item, info)
        return
    if not _is_mapping(body):
        return
    info.response_model = _text(body.get("modelVersion")) or info.response_model
    info.response_id = _text(body.get("responseId")) or info.response_id
    candidates = body.get("candidates")
    if isinstance(candidates, list):
        for candidate in candidates:
            if _is_mapping(candidate):
                reason = candidate.get("finishReason")
                if reason is not None:
                    info.add_finish_reason(reason)
    usage = body.get("usageMetadata")
    if usage is not None and _is_mapping(usage):
        prompt = _int(usage.get("promptTokenCount"))
        output = _int(usage.get("candidatesTokenCount"))
        if prompt is not None:
            info.input_tokens = prompt
        if output is not None:
            info.output_tokens = output
    error = body.get("error")
    if error is not None and _is_mapping(error):
        info.error_type = _text(error.get("status")) or "error"
        info.error_message = _text(error.get("message"))
