"""Which requests are model calls, and what they ask for: operation, dialect, model, stream.

``match_endpoint`` is the only work done for every request (a method compare and a few suffix checks);
everything else runs for model calls only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ... import semconv
from .jsonscan import top_level_fields

# How a stream ends cleanly: `data: [DONE]` (OpenAI chat/completions), a terminal event the response
# reader recognises (Anthropic `message_stop`, Responses `response.completed`), or plain EOF (Gemini).
TERMINAL_DONE: Final = "done"
TERMINAL_EVENT: Final = "event"
TERMINAL_EOF: Final = "eof"

DIALECT_OPENAI: Final = "openai"
DIALECT_ANTHROPIC: Final = "anthropic"
DIALECT_GEMINI: Final = "gemini"


@dataclass(frozen=True, slots=True)
class Endpoint:
    operation: str  # gen_ai.operation.name
    dialect: str  # wire format of the bodies
    provider: str  # provider when the host does not tell (self-hosted and unknown hosts)
    terminal: str
    path_model: str | None = None  # Azure deployment, Gemini model
    path_stream: bool | None = None  # Gemini: the method says it


_CHAT: Final = Endpoint(semconv.OP_CHAT, DIALECT_OPENAI, semconv.PROVIDER_OPENAI, TERMINAL_DONE)
_COMPLETIONS: Final = Endpoint(
    semconv.OP_TEXT_COMPLETION, DIALECT_OPENAI, semconv.PROVIDER_OPENAI, TERMINAL_DONE
)
_EMBEDDINGS: Final = Endpoint(semconv.OP_EMBEDDINGS, DIALECT_OPENAI, semconv.PROVIDER_OPENAI, TERMINAL_EOF)
_RESPONSES: Final = Endpoint(semconv.OP_CHAT, DIALECT_OPENAI, semconv.PROVIDER_OPENAI, TERMINAL_EVENT)
_MESSAGES: Final = Endpoint(semconv.OP_CHAT, DIALECT_ANTHROPIC, semconv.PROVIDER_ANTHROPIC, TERMINAL_EVENT)

_SUFFIXES: Final = (
    ("/chat/completions", _CHAT),
    ("/completions", _COMPLETIONS),
    ("/embeddings", _EMBEDDINGS),
    ("/responses", _RESPONSES),
    ("/messages", _MESSAGES),
)
_ALL_SUFFIXES: Final = tuple(s for s, _ in _SUFFIXES)
_AZURE_PREFIX: Final = "/openai/deployments/"
_GEMINI_METHODS: Final = (":generateContent", ":streamGenerateContent")


def match_endpoint(method: str, path: str) -> Endpoint | None:
    """The model endpoint of a request, or None for anything else (which then passes straight through)."""
    if method != "POST":
        return None
    if path.endswith(_ALL_SUFFIXES):
        for suffix, endpoint in _SUFFIXES:
            if path.endswith(suffix):
                if endpoint is _MESSAGES and "/threads/" in path:
                    return None  # OpenAI Assistants thread messages are not a model call
                azure = path.find(_AZURE_PREFIX)
                if azure != -1:
                    return _azure(path, azure, endpoint)
                return endpoint
    if path.endswith(_GEMINI_METHODS):
        return _gemini(path)
    return None


def _azure(path: str, start: int, endpoint: Endpoint) -> Endpoint:
    rest = path[start + len(_AZURE_PREFIX) :]
    deployment = rest.split("/", 1)[0]
    return Endpoint(
        endpoint.operation,
        endpoint.dialect,
        semconv.PROVIDER_AZURE_OPENAI,
        endpoint.terminal,
        path_model=deployment or None,
    )


def _gemini(path: str) -> Endpoint | None:
    colon = path.rfind(":")
    slash = path.rfind("/models/", 0, colon)
    if slash == -1:
        return None
    model = path[slash + len("/models/") : colon]
    return Endpoint(
        semconv.OP_GENERATE_CONTENT,
        DIALECT_GEMINI,
        semconv.PROVIDER_GEMINI,
        TERMINAL_EOF,
        path_model=model or None,
        path_stream=path.endswith(":streamGenerateContent"),
    )


# OpenAI-compatible SDKs of other providers, by the start of their User-Agent. The wire does not tell
# these providers apart; the SDK does, as the semantic conventions' own instrumentations name the
# provider of the client they instrument. Used only when the host does not name the provider.
_SDK_AGENTS: Final = (
    ("Groq/", semconv.PROVIDER_GROQ),
    ("mistral-client-python/", semconv.PROVIDER_MISTRAL),
)


def sdk_provider(endpoint: Endpoint, headers: Any) -> str:
    """The provider an OpenAI-dialect request names through its SDK, else the endpoint's own."""
    if endpoint.provider != semconv.PROVIDER_OPENAI:
        return endpoint.provider  # Anthropic, Gemini and Azure paths say it themselves
    agent = headers.get("user-agent")
    if agent:
        for prefix, provider in _SDK_AGENTS:
            if agent.startswith(prefix):
                return provider
    return endpoint.provider


_WANTED: Final = ("model", "stream")


def model_and_stream(body: bytes | None) -> tuple[str | None, bool]:
    """``model`` and ``stream`` of a JSON request body, without parsing a large prompt (see jsonscan)."""
    if not body:
        return None, False
    fields = top_level_fields(body, _WANTED)
    model = fields.get("model")
    stream = fields.get("stream")
    return (model if isinstance(model, str) else None), stream is True
