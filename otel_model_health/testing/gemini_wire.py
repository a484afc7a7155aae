"""Gemini (Generative Language API) wire format, minimal: generateContent and streamGenerateContent."""

from __future__ import annotations

from typing import Any, Final

from otel_model_health.testing.content import Content, StreamBody, new_id, sse
from otel_model_health.testing.wire import ErrorReply, SimRequest, WireFormat

# Google's error bodies carry the gRPC status name.
_STATUS_NAMES: Final[dict[int, str]] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def gemini_error_body(status: int, status_name: str, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": status_name}}


class GeminiWire(WireFormat):
    name = "gemini"
    request_id_header = "x-request-id"
    default_stream_error_type = "UNAVAILABLE"
    default_stream_error_status = 503
    default_stream_error_message = "The model is overloaded. Please try again later."

    def error(self, status: int, *, error_type: str | None, message: str | None) -> ErrorReply:
        name = error_type or _STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
        default = "The model is overloaded. Please try again later." if status == 503 else f"HTTP {status}"
        return ErrorReply(status, gemini_error_body(status, name, message or default))

    def model_not_found(self, model: str | None) -> ErrorReply:
        message = (
            f"models/{model} is not found for API version v1beta, or is not supported for generateContent."
        )
        return ErrorReply(404, gemini_error_body(404, "NOT_FOUND", message))

    def stream_error_event(self, error_type: str, message: str) -> bytes:
        return sse(gemini_error_body(self.default_stream_error_status, error_type, message))

    def reply(
        self, request: SimRequest, content: Content, *, models: list[str]
    ) -> dict[str, Any] | StreamBody:
        if not request.stream:
            return _response(content, [content.text], final=True)
        body = StreamBody()
        response_id = new_id("")
        pieces = list(content.pieces)
        # Gemini has no terminal marker: the last chunk, with finishReason and usage, plays that role.
        body.chunks.extend(sse(_response(content, [p], final=False, response_id=response_id)) for p in pieces)
        body.terminal.append(sse(_response(content, [""], final=True, response_id=response_id)))
        return body


def _response(
    content: Content, texts: list[str], *, final: bool, response_id: str | None = None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {
        "content": {"parts": [{"text": t} for t in texts], "role": "model"},
        "index": 0,
    }
    if final:
        candidate["finishReason"] = "MAX_TOKENS" if content.truncated else "STOP"
    out: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": content.model,
        "responseId": response_id or new_id(""),
    }
    if final:
        out["usageMetadata"] = {
            "promptTokenCount": content.input_tokens,
            "candidatesTokenCount": content.output_tokens,
            "totalTokenCount": content.input_tokens + content.output_tokens,
        }
    return out
