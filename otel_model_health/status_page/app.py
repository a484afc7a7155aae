"""The status page's routes under ``<prefix>/ui``: the HTML shell, its script and stylesheet (shipped in
the package, no build step), and the JSON document it polls.

Safety: the page is read-only (GET and HEAD only), every answer carries a strict Content-Security-Policy
(scripts and styles from this origin only, no inline code, nothing from elsewhere, no framing), and the
script sets every text with ``textContent``: model names come from requests and are attacker-controlled.
An ``auth`` hook, called with the ASGI scope, decides whether a request may see the page at all.
"""

from __future__ import annotations

import html
import inspect
import json
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import resources
from typing import Any, Final

from .._internal import report_internal_error
from ..option_values import ConfigurationError, check_trace_url_template
from .document import SentryEvents, status_document

Scope = MutableMapping[str, Any]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Auth = Callable[[Scope], "bool | Awaitable[bool]"]

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS: Final = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_STATIC: Final = {
    "/app.js": "text/javascript; charset=utf-8",
    "/style.css": "text/css; charset=utf-8",
    "/favicon.svg": "image/svg+xml",
}
DEFAULT_POLL_S: Final = 2.0


def _static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


class StatusPage:
    """Serves ``<prefix>/ui``, ``<prefix>/ui/app.js``, ``<prefix>/ui/style.css`` and ``<prefix>/ui/data``."""

    def __init__(
        self,
        resolve: Callable[[], Any],
        *,
        auth: Auth | None = None,
        trace_url_template: str | None = None,
        sentry: SentryEvents | None = None,
        sentry_url_template: str | None = None,
        poll_interval_s: float = DEFAULT_POLL_S,
    ) -> None:
        if trace_url_template is not None:  # fail when the app is built, not on every incident
            check_trace_url_template("trace_url_template", trace_url_template)
        if sentry_url_template is not None:
            check_event_url_template(sentry_url_template)
        self._resolve = resolve
        self._auth = auth
        self._trace_url_template = trace_url_template
        self._sentry = sentry
        self._sentry_url_template = sentry_url_template
        self._poll_ms = max(250, int(poll_interval_s * 1000))
        # Read once: the files are part of the installed package.
        self._files = {path: _static(path.lstrip("/")) for path in _STATIC}
        self._shell = _static("index.html").decode()

    def handles(self, sub: str) -> bool:
        """``sub`` is the path after ``<prefix>/ui``."""
        return sub in ("", "/", "/data", *_STATIC)

    async def __call__(self, scope: Scope, send: Send, sub: str, base: str) -> None:
        """Answer a request for ``<prefix>/ui<sub>``; ``base`` is the page's absolute path."""
        head = scope.get("method") == "HEAD"
        try:
            if self._auth is not None and not await _allowed(self._auth, scope):
                await _send(send, 403, b"forbidden", "text/plain; charset=utf-8", head=head)
                return
            if sub in _STATIC:
                await _send(send, 200, self._files[sub], _STATIC[sub], head=head, cache="no-cache")
            elif sub == "/data":
                document = status_document(
                    self._resolve(),
                    trace_url_template=self._trace_url_template,
                    sentry=self._sentry,
                    sentry_url_template=self._sentry_url_template,
                )
                body = json.dumps(document, separators=(",", ":")).encode()
                await _send(send, 200, body, "application/json", head=head)
            else:
                page = self._shell.replace("{{base}}", html.escape(base, quote=True)).replace(
                    "{{poll_ms}}", str(self._poll_ms)
                )
                await _send(send, 200, page.encode(), "text/html; charset=utf-8", head=head)
        except Exception:
            report_internal_error("status_page")
            await _send(send, 500, b"internal error", "text/plain; charset=utf-8", head=head)


def check_event_url_template(template: str) -> None:
    try:
        template.format(event_id="0" * 32)
    except (KeyError, IndexError, ValueError, AttributeError):
        raise ConfigurationError(f"sentry_url_template may only use {{event_id}}, got {template!r}") from None


async def _allowed(auth: Auth, scope: Scope) -> bool:
    verdict = auth(scope)
    if inspect.isawaitable(verdict):
        verdict = await verdict
    return bool(verdict)


async def _send(
    send: Send, status: int, body: bytes, content_type: str, *, head: bool, cache: str = "no-store"
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"cache-control", cache.encode()),
        (b"content-length", str(len(body)).encode()),
        *_SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
