"""ModelKey: which model, on which provider, through which gateway."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from . import semconv

MAX_MODEL_LENGTH: Final = 200
MAX_PROVIDER_LENGTH: Final = 64
MAX_GATEWAY_LENGTH: Final = 64
DIRECT_GATEWAY: Final = "direct"
UNKNOWN: Final = "unknown"

# Common spellings → the GenAI spec's well-known `gen_ai.provider.name` values.
PROVIDER_ALIASES: Final[dict[str, str]] = {
    "azure": semconv.PROVIDER_AZURE_OPENAI,
    "azure_openai": semconv.PROVIDER_AZURE_OPENAI,
    "azure-openai": semconv.PROVIDER_AZURE_OPENAI,
    "az.ai.openai": semconv.PROVIDER_AZURE_OPENAI,
    "azure.ai.inference": semconv.PROVIDER_AZURE_INFERENCE,
    "bedrock": semconv.PROVIDER_AWS_BEDROCK,
    "aws": semconv.PROVIDER_AWS_BEDROCK,
    "gemini": semconv.PROVIDER_GEMINI,
    "google": semconv.PROVIDER_GEMINI,
    "vertex_ai": semconv.PROVIDER_VERTEX_AI,
    "vertexai": semconv.PROVIDER_VERTEX_AI,
    "mistral": semconv.PROVIDER_MISTRAL,
    "mistralai": semconv.PROVIDER_MISTRAL,
    "xai": semconv.PROVIDER_XAI,
    "x-ai": semconv.PROVIDER_XAI,
    "grok": semconv.PROVIDER_XAI,
    "watsonx": semconv.PROVIDER_WATSONX,
    "meta-llama": "meta",
}


def clean_text(value: object, cap: int) -> str:
    """``value`` as a trimmed string of at most ``cap`` printable characters (others become ``?``)."""
    return _clean(value, cap)


def _clean(value: object, cap: int) -> str:
    text = value if isinstance(value, str) else str(value)
    text = text.strip()
    if len(text) > cap:
        text = text[:cap]
    if not text.isprintable():
        # Control characters would end up in span attributes, Sentry tags and log lines.
        text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text


def normalize_provider(value: object) -> str:
    text = _clean(value, MAX_PROVIDER_LENGTH).lower()
    return PROVIDER_ALIASES.get(text, text) or UNKNOWN


@dataclass(frozen=True, slots=True, init=False)
class ModelKey:
    """Identity of one model as health is tracked: ``(provider, model, gateway)``.

    Provider and gateway are lower-cased; the model id keeps its case (``Qwen/Qwen2.5-72B-Instruct``).
    Every part is trimmed and length-capped, so a hostile model string cannot grow memory, tags or
    metric series without bound.
    """

    provider: str
    model: str
    gateway: str

    def __init__(self, *, provider: object, model: object, gateway: object = DIRECT_GATEWAY) -> None:
        object.__setattr__(self, "provider", normalize_provider(provider))
        object.__setattr__(self, "model", _clean(model, MAX_MODEL_LENGTH) or UNKNOWN)
        gateway_text = _clean(gateway if gateway is not None else "", MAX_GATEWAY_LENGTH).lower()
        object.__setattr__(self, "gateway", gateway_text or DIRECT_GATEWAY)

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}@{self.gateway}"
