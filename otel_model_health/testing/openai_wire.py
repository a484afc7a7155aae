"""OpenAI wire format (also served under Azure's deployment paths): chat completions, legacy completions,
embeddings, models, and a minimal Responses API."""

from __future__ import annotations

import base64
import struct
from typing import Any, Final

from otel_model_health.testing.content import Content, StreamBody, new_id, sse
from otel_model_health.testing.wire import ErrorReply, SimRequest, WireFormat

_FINGERPRINT: Final = "fp_simulated"
_EMBEDDING_DIMENSIONS: Final = 8

# (type, code) of the error bodies OpenAI sends for each status.
_ERRORS: Final[dict[int, tuple[str, str | None, str]]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to sample from this model."),
    404: ("invalid_request_error", None, "Not found."),
    408: ("timeout", None, "Request timed out."),
    413: ("invalid_request_error", None, "Request too large."),
    422: ("invalid_request_error", None, "Unprocessable request."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
    529: ("server_error", None, "The server is overloaded, please try again later."),
}


def openai_error_body(message: str, error_type: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


class OpenAIWire(WireFormat):
    name = "openai"
    request_id_header = "x-request-id"
    default_stream_error_type = "server_error"
    default_stream_error_status = 500
    default_stream_error_message = "The server had an error while processing your request. Sorry about that!"

    def error(self, status: int, *, error_type: str | None, message: str | None) -> ErrorReply:
        default_type, code, default_message = _ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}")
        )
        body = openai_error_body(message or default_message, error_type or default_type, code)
        headers = {"x-ratelimit-remaining-requests": "0"} if status == 429 else {}
        return ErrorReply(status, body, headers)

    def model_not_found(self, model: str | None) -> ErrorReply:
        message = f"The model `{model}` does not exist or you do not have access to it."
        return ErrorReply(404, openai_error_body(message, "invalid_request_error", "model_not_found"))

    def stream_error_event(self, error_type: str, message: str) -> bytes:
        # OpenAI reports a failure inside a 200 stream as a data line carrying an "error" object.
        return sse(openai_error_body(message, error_type, None))

    def reply(
        self, request: SimRequest, content: Content, *, models: list[str]
    ) -> dict[str, Any] | StreamBody:
        op = request.operation
        if op == "models":
            return _models(models, content.created)
        if op == "embeddings":
            return _embeddings(request, content)
        if op == "completions":
            return _completion_stream(request, content) if request.stream else _completion(content)
        if op == "responses":
            return _response_stream(content) if request.stream else _response(content)
        return _chat_stream(request, content) if request.stream else _chat(content)


def _usage(content: Content) -> dict[str, Any]:
    return {
        "prompt_tokens": content.input_tokens,
        "completion_tokens": content.output_tokens,
        "total_tokens": content.input_tokens + content.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _finish(content: Content) -> str:
    return "length" if content.truncated else "stop"


def _chat(content: Content) -> dict[str, Any]:
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": content.created,
        "model": content.model,
        "system_fingerprint": _FINGERPRINT,
        "service_tier": "default",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content.text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": _finish(content),
            }
        ],
        "usage": _usage(content),
    }


def _include_usage(request: SimRequest) -> bool:
    options = request.body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _chat_stream(request: SimRequest, content: Content) -> StreamBody:
    chunk_id = new_id("chatcmpl-")
    with_usage = _include_usage(request)

    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": content.created,
            "model": content.model,
            "system_fingerprint": _FINGERPRINT,
            "service_tier": "default",
            "choices": choices,
        }
        if with_usage:
            # With include_usage every chunk carries "usage": null, and one last chunk carries the totals.
            data["usage"] = usage
        return sse(data)

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    body = StreamBody()
    body.preamble.append(chunk([choice({"role": "assistant", "content": "", "refusal": None})]))
    body.chunks.extend(chunk([choice({"content": piece})]) for piece in content.pieces)
    body.epilogue.append(chunk([choice({}, _finish(content))]))
    if with_usage:
        body.epilogue.append(chunk([], _usage(content)))
    body.terminal.append(sse("[DONE]"))
    return body


def _completion(content: Content) -> dict[str, Any]:
    return {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": content.created,
        "model": content.model,
        "system_fingerprint": _FINGERPRINT,
        "choices": [{"text": content.text, "index": 0, "logprobs": None, "finish_reason": _finish(content)}],
        "usage": {
            "prompt_tokens": content.input_tokens,
            "completion_tokens": content.output_tokens,
            "total_tokens": content.input_tokens + content.output_tokens,
        },
    }


def _completion_stream(request: SimRequest, content: Content) -> StreamBody:
    chunk_id = new_id("cmpl-")

    def chunk(text: str, finish: str | None) -> bytes:
        return sse(
            {
                "id": chunk_id,
                "object": "text_completion",
                "created": content.created,
                "model": content.model,
                "system_fingerprint": _FINGERPRINT,
                "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
            }
        )

    body = StreamBody()
    body.chunks.extend(chunk(piece, None) for piece in content.pieces)
    body.epilogue.append(chunk("", _finish(content)))
    body.terminal.append(sse("[DONE]"))
    return body


def _embeddings(request: SimRequest, content: Content) -> dict[str, Any]:
    raw = request.body.get("input")
    inputs = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    as_base64 = request.body.get("encoding_format") == "base64"
    data = []
    for index in range(len(inputs)):
        vector = [round(0.1 * ((index + i) % 10) - 0.45, 3) for i in range(_EMBEDDING_DIMENSIONS)]
        # The openai SDK asks for base64 (little-endian float32) unless the caller chose "float".
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": content.model,
        "usage": {"prompt_tokens": content.input_tokens, "total_tokens": content.input_tokens},
    }


def _models(models: list[str], created: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": created, "owned_by": "simulated"} for m in models],
    }


def _response_usage(content: Content) -> dict[str, Any]:
    return {
        "input_tokens": content.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": content.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": content.input_tokens + content.output_tokens,
    }


def _response(
    content: Content,
    *,
    response_id: str | None = None,
    message_id: str | None = None,
    status: str = "completed",
) -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": response_id or new_id("resp_"),
        "object": "response",
        "created_at": content.created,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if content.truncated and done else None,
        "instructions": None,
        "model": content.model,
        "output": [
            {
                "type": "message",
                "id": message_id or new_id("msg_"),
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": content.text, "annotations": [], "logprobs": []}],
            }
        ]
        if done
        else [],
        "parallel_tool_calls": True,
        "temperature": 1.0,
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "metadata": {},
        "usage": _response_usage(content) if done else None,
    }


def _response_stream(content: Content) -> StreamBody:
    response_id = new_id("resp_")
    message_id = new_id("msg_")
    seq = iter(range(1_000_000))

    def event(kind: str, **data: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(seq), **data}, event=kind)

    body = StreamBody()
    started = _response(content, response_id=response_id, message_id=message_id, status="in_progress")
    body.preamble.append(event("response.created", response=started))
    body.preamble.append(event("response.in_progress", response=started))
    item = {"type": "message", "id": message_id, "status": "in_progress", "role": "assistant", "content": []}
    body.preamble.append(event("response.output_item.added", output_index=0, item=item))
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    body.preamble.append(
        event("response.content_part.added", item_id=message_id, output_index=0, content_index=0, part=part)
    )
    for piece in content.pieces:
        body.chunks.append(
            event(
                "response.output_text.delta",
                item_id=message_id,
                output_index=0,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
        )
    done_part = {"type": "output_text", "text": content.text, "annotations": [], "logprobs": []}
    body.epilogue.append(
        event(
            "response.output_text.done",
            item_id=message_id,
            output_index=0,
            content_index=0,
            text=content.text,
            logprobs=[],
        )
    )
    body.epilogue.append(
        event(
            "response.content_part.done", item_id=message_id, output_index=0, content_index=0, part=done_part
        )
    )
    done_item = {**item, "status": "completed", "content": [done_part]}
    body.epilogue.append(event("response.output_item.done", output_index=0, item=done_item))
    finished = _response(content, response_id=response_id, message_id=message_id)
    body.terminal.append(event("response.completed", response=finished))
    return body
