"""The contract each provider wire format (OpenAI, Anthropic, Gemini) fulfils for the server."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from otel_model_health.testing.content import Content, StreamBody


@dataclass(frozen=True, slots=True)
class SimRequest:
    """One parsed request, as the wire formats need it."""

    method: str
    path: str
    api: str  # openai | anthropic | azure | gemini
    operation: str  # chat | completions | embeddings | models | responses | messages | generate
    model: str | None
    stream: bool
    body: Mapping[str, Any]
    headers: Mapping[str, str]  # lower-cased names


@dataclass(frozen=True, slots=True)
class ErrorReply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class WireFormat(ABC):
    """Bodies in one provider's format. Pure: no sockets, no state, so each is easy to test."""

    name: str
    request_id_header: str
    # What a stream_error fault sends when the test did not say.
    default_stream_error_type: str
    default_stream_error_status: int
    default_stream_error_message: str

    @abstractmethod
    def error(self, status: int, *, error_type: str | None, message: str | None) -> ErrorReply: ...

    @abstractmethod
    def model_not_found(self, model: str | None) -> ErrorReply: ...

    @abstractmethod
    def reply(
        self, request: SimRequest, content: Content, *, models: list[str]
    ) -> dict[str, Any] | StreamBody:
        """The normal answer: a JSON body, or a stream."""

    @abstractmethod
    def stream_error_event(self, error_type: str, message: str) -> bytes: ...

    def malformed_event(self) -> bytes:
        return b'data: {"id": "broken", "choices": [{"delta": {"content": "unterminated\n\n'

    @staticmethod
    def input_keys(request: SimRequest) -> tuple[str, ...]:
        return ("messages", "prompt", "input", "system", "instructions", "contents")

    @staticmethod
    def max_tokens(request: SimRequest) -> Any:
        body = request.body
        for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
            if key in body:
                return body[key]
        config = body.get("generationConfig")
        if isinstance(config, Mapping):
            return config.get("maxOutputTokens")
        return None
