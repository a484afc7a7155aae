"""Sentry bridge: reports model-health incidents to Sentry (the ``sentry`` extra).

Only ``configure()`` and ``settings`` (for ``SentrySettings``) import this package; ``sentry_sdk`` itself
is imported only when a ``SentryBridge`` is constructed or Sentry is initialised.
"""

from .bridge import SentryBridge
from .init import disabled_genai_integrations, init_sentry
from .settings import SentrySettings

__all__ = ["SentryBridge", "SentrySettings", "disabled_genai_integrations", "init_sentry"]
