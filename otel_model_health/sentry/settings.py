"""Sentry settings read from the environment (``SENTRY_ENABLED``, ``SENTRY_DSN``, ...).

Parsing is strict: a typo such as ``SENTRY_ENABLED=ture`` or ``SENTRY_TRACES_SAMPLE_RATE=20%`` is a
configuration error raised at start-up, naming the variable and its value, rather than a silently
disabled bridge.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

ENV_ENABLED: Final = "SENTRY_ENABLED"
ENV_DSN: Final = "SENTRY_DSN"
ENV_ENVIRONMENT: Final = "SENTRY_ENVIRONMENT"
ENV_TRACES_SAMPLE_RATE: Final = "SENTRY_TRACES_SAMPLE_RATE"

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class SentrySettings:
    """What ``configure()`` needs to decide whether and how to initialise Sentry."""

    enabled: bool = False
    dsn: str | None = None
    environment: str | None = None
    traces_sample_rate: float | None = None

    @property
    def active(self) -> bool:
        """True when the bridge should run: enabled and a DSN is set."""
        return self.enabled and bool(self.dsn)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SentrySettings:
        """Read the ``SENTRY_*`` variables; raise ``ValueError`` naming the variable on a bad value."""
        env = os.environ if environ is None else environ
        return cls(
            enabled=_parse_bool(ENV_ENABLED, env.get(ENV_ENABLED)),
            dsn=_parse_dsn(ENV_DSN, env.get(ENV_DSN)),
            environment=(env.get(ENV_ENVIRONMENT) or "").strip() or None,
            traces_sample_rate=_parse_rate(ENV_TRACES_SAMPLE_RATE, env.get(ENV_TRACES_SAMPLE_RATE)),
        )


def _parse_bool(name: str, raw: str | None) -> bool:
    text = (raw or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name} must be one of true/false/1/0/yes/no/on/off, got {raw!r}")


def _parse_dsn(name: str, raw: str | None) -> str | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        parts = urlsplit(text)
        valid = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and bool(parts.username)
            and bool(parts.path.strip("/"))
        )
    except ValueError:  # e.g. a non-numeric port
        valid = False
    if not valid:
        raise ValueError(f"{name} must look like https://<public_key>@<host>/<project_id>, got {raw!r}")
    return text


def _parse_rate(name: str, raw: str | None) -> float | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if math.isnan(rate) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name} must be a number between 0 and 1, got {raw!r}")
    return rate
