"""Which API and operation a request path names, and which model it is for."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

_OPENAI: Final[dict[tuple[str, str], str]] = {
    ("POST", "/v1/chat/completions"): "chat",
    ("POST", "/v1/completions"): "completions",
    ("POST", "/v1/embeddings"): "embeddings",
    ("POST", "/v1/responses"): "responses",
    ("GET", "/v1/models"): "models",
}
_AZURE: Final = re.compile(
    r"^/openai/deployments/(?P<deployment>[^/]+)/(?P<op>chat/completions|completions|embeddings)$"
)
_GEMINI: Final = re.compile(
    r"^/v1(?:beta)?/models/(?P<model>[^/:]+):(?P<op>generateContent|streamGenerateContent)$"
)
# Groq's SDK puts its OpenAI-compatible API under /openai/v1 (api.groq.com/openai/v1/chat/completions).
_GROQ_PREFIX: Final = "/openai/v1/"
_AZURE_OPS: Final = {"chat/completions": "chat", "completions": "completions", "embeddings": "embeddings"}


@dataclass(frozen=True, slots=True)
class Route:
    api: str
    operation: str
    path_model: str | None = None  # Azure deployment / Gemini model, when the path names it

    def model_from(self, body: Mapping[str, Any]) -> str | None:
        if self.path_model is not None:
            return self.path_model
        model = body.get("model")
        return model if isinstance(model, str) else None

    def is_stream(self, body: Mapping[str, Any]) -> bool:
        if self.api == "gemini":
            return self.operation == "stream_generate"
        return body.get("stream") is True


def route(method: str, path: str, headers: Mapping[str, str]) -> Route | None:
    """``headers`` lower-cased. GET /v1/models is Anthropic's when the request has ``anthropic-version``."""
    if method == "POST" and path == "/v1/messages":
        return Route("anthropic", "messages")
    if method == "GET" and path == "/v1/models" and "anthropic-version" in headers:
        return Route("anthropic", "models")
    if path.startswith(_GROQ_PREFIX):
        path = path[len("/openai") :]
    operation = _OPENAI.get((method, path))
    if operation is not None:
        return Route("openai", operation)
    if method != "POST":
        return None
    if match := _AZURE.match(path):
        return Route("azure", _AZURE_OPS[match["op"]], unquote(match["deployment"]))
    if match := _GEMINI.match(path):
        op = "generate" if match["op"] == "generateContent" else "stream_generate"
        return Route("gemini", op, unquote(match["model"]))
    return None
