"""The live status page under ``<prefix>/ui`` of ``health_asgi_app`` (docs/health-endpoint.md)."""

from .app import CSP, Auth, StatusPage
from .document import VERSION, SentryEvents, status_document

__all__ = ["CSP", "VERSION", "Auth", "SentryEvents", "StatusPage", "status_document"]
