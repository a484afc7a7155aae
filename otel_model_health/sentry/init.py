"""Lazy access to the optional ``sentry_sdk`` and initialisation of Sentry when the app has not done it.

``sentry_sdk`` is the ``sentry`` extra: nothing imports it at module import time, so the rest of the
library works without it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .settings import SentrySettings

INSTALL_HINT = "pip install 'otel_model_health[sentry]'"


def import_sentry_sdk() -> ModuleType:
    """Return the ``sentry_sdk`` module, or raise an ImportError that says which extra to install."""
    try:
        import sentry_sdk
    except ImportError as exc:
        raise ImportError(f"the Sentry bridge needs sentry-sdk: {INSTALL_HINT}") from exc
    return sentry_sdk


def disabled_genai_integrations() -> list[Any]:
    """sentry-sdk's own OpenAI and Anthropic integrations, for ``sentry_sdk.init(disabled_integrations=...)``.

    Left enabled, they send one Sentry event per handled API error (every 503, every retry), which is the
    flood the bridge exists to prevent. An integration whose client library is not installed cannot
    auto-enable and is left out (its module refuses to import without that library).
    """
    from sentry_sdk.integrations import DidNotEnable

    integrations: list[Any] = []
    try:
        from sentry_sdk.integrations.openai import OpenAIIntegration

        integrations.append(OpenAIIntegration())
    except (ImportError, DidNotEnable):
        pass
    try:
        from sentry_sdk.integrations.anthropic import AnthropicIntegration

        integrations.append(AnthropicIntegration())
    except (ImportError, DidNotEnable):
        pass
    return integrations


def init_sentry(settings: SentrySettings, **options: Any) -> bool:
    """Initialise ``sentry_sdk`` from ``settings`` unless the app already has a client.

    Returns True when this call initialised Sentry. An existing client is never replaced: the app owns its
    DSN, sampling and integrations. ``options`` are passed on to ``sentry_sdk.init``.
    """
    sentry_sdk = import_sentry_sdk()
    if sentry_sdk.is_initialized() or not settings.active:
        return False
    init_options: dict[str, Any] = {"dsn": settings.dsn}
    if settings.environment is not None:
        init_options["environment"] = settings.environment
    if settings.traces_sample_rate is not None:
        init_options["traces_sample_rate"] = settings.traces_sample_rate
    init_options.update(options)
    disabled = list(init_options.pop("disabled_integrations", None) or [])
    disabled.extend(disabled_genai_integrations())
    sentry_sdk.init(disabled_integrations=disabled, **init_options)
    return True
