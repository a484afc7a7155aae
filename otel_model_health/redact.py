"""Scrubbing of secrets before any text reaches a span, the registry's last error, or Sentry."""

from __future__ import annotations

import re
from typing import Final

REDACTED: Final = "[REDACTED]"
MAX_MESSAGE_LENGTH: Final = 1024

# Header names whose values never leave the process.
SECRET_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie", "set-cookie"}
)

_KEY_LIKE: Final = re.compile(
    r"""
    (?:sk|pk|rk)-(?:ant-|proj-|or-)?[A-Za-z0-9_\-]{8,}   # OpenAI / Anthropic / OpenRouter style keys
    | \bBearer\s+[A-Za-z0-9._~+/=\-]{8,}                 # bearer tokens
    | \bAIza[0-9A-Za-z_\-]{20,}                           # Google API keys
    | \bgsk_[A-Za-z0-9]{16,}                               # Groq keys
    | \bxai-[A-Za-z0-9]{16,}                               # xAI keys
    | ((?:api[_-]?key|key|token|access_token|secret|password|sig|signature)=)[^&\s"']+  # query params
    """,
    re.IGNORECASE | re.VERBOSE,
)


def _replace(match: re.Match[str]) -> str:
    prefix = match.group(1)
    return f"{prefix}{REDACTED}" if prefix else REDACTED


def scrub(text: str, *, max_length: int = MAX_MESSAGE_LENGTH) -> str:
    """Remove key-like strings from ``text`` and cap its length.

    Scrubbing runs before the final cut, so a key straddling the cut cannot leave a prefix behind; the
    text scrubbed is itself bounded (twice the cap: far longer than any key)."""
    return _KEY_LIKE.sub(_replace, text[: 2 * max_length])[:max_length]
