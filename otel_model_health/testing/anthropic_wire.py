"""Anthropic wire format: the Messages API (JSON and SSE) and the models list."""

from __future__ import annotations

from typing import Any, Final

from otel_model_health.testing.content import Content, StreamBody, new_id, sse
from otel_model_health.testing.wire import ErrorReply, SimRequest, WireFormat

# error.type and a default message for each status, as Anthropic documents them.
_ERRORS: Final[dict[int, tuple[str, str]]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


def anthropic_error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": new_id("req_")}


class AnthropicWire(WireFormat):
    name = "anthropic"
    request_id_header = "request-id"
    default_stream_error_type = "overloaded_error"
    default_stream_error_status = 529
    default_stream_error_message = "Overloaded"

    def error(self, status: int, *, error_type: str | None, message: str | None) -> ErrorReply:
        default_type, default_message = _ERRORS.get(
            status, ("api_error" if status >= 500 else "invalid_request_error", f"HTTP {status}")
        )
        return ErrorReply(
            status, anthropic_error_body(error_type or default_type, message or default_message)
        )

    def model_not_found(self, model: str | None) -> ErrorReply:
        return ErrorReply(404, anthropic_error_body("not_found_error", f"model: {model}"))

    def stream_error_event(self, error_type: str, message: str) -> bytes:
        return sse({"type": "error", "error": {"type": error_type, "message": message}}, event="error")

    def malformed_event(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {\n\n'

    def reply(
        self, request: SimRequest, content: Content, *, models: list[str]
    ) -> dict[str, Any] | StreamBody:
        if request.operation == "models":
            return _models(models)
        return _message_stream(content) if request.stream else _message(content)


def _stop_reason(content: Content) -> str:
    return "max_tokens" if content.truncated else "end_turn"


def _usage(content: Content, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": content.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _message(content: Content, *, message_id: str | None = None, streaming: bool = False) -> dict[str, Any]:
    return {
        "id": message_id or new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": content.model,
        "content": [] if streaming else [{"type": "text", "text": content.text}],
        "stop_reason": None if streaming else _stop_reason(content),
        "stop_sequence": None,
        "usage": _usage(content, 1 if streaming else content.output_tokens),
    }


def _message_stream(content: Content) -> StreamBody:
    body = StreamBody()
    body.preamble.append(
        sse({"type": "message_start", "message": _message(content, streaming=True)}, "message_start")
    )
    body.preamble.append(
        sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        )
    )
    body.preamble.append(sse({"type": "ping"}, "ping"))
    body.chunks.extend(
        sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
            "content_block_delta",
        )
        for piece in content.pieces
    )
    body.epilogue.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    body.epilogue.append(
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(content), "stop_sequence": None},
                "usage": {"output_tokens": content.output_tokens},
            },
            "message_delta",
        )
    )
    body.terminal.append(sse({"type": "message_stop"}, "message_stop"))
    return body


def _models(models: list[str]) -> dict[str, Any]:
    data = [
        {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in models
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": models[0] if models else None,
        "last_id": models[-1] if models else None,
    }
