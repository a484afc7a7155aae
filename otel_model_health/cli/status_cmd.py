"""``otel-model-health status --url http://host/health``: read a running app's health endpoint.

Fetches the summary (``/health``) and the detail (``/health/models``) served by ``health_asgi_app`` and
prints the same table as the other commands. Standard library only (urllib), so it works without extras.
A 503 with a health document is an answer (apps may configure 503 for unhealthy), not an error.
"""

from __future__ import annotations

import argparse
import http.client
import json
from collections.abc import Callable
from typing import Any, Final, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from . import deadline_http, strict_json
from .arguments import positive_seconds
from .health_document import rows_from, summary_from
from .slo_table import render_slo_table
from .table import overall_line, render_table
from .text import printable, usage_error

EXIT_OK: Final = 0
EXIT_UNHEALTHY: Final = 1
_MAX_BODY: Final = 8 * 1024 * 1024
T = TypeVar("T")


class StatusError(Exception):
    """The endpoint cannot be read or did not answer with a health document."""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show a running app's /health endpoint as a table",
        description=(
            "Fetch URL (the summary) and URL/models (one entry per model) from an app serving "
            "health_asgi_app. Exit 0 when the app reports healthy, 1 otherwise, 2 when the endpoint "
            "cannot be read."
        ),
    )
    parser.add_argument(
        "--url",
        required=True,
        help="the health endpoint, e.g. http://localhost:8000/health (a bare http://host:port means /health)",
    )
    parser.add_argument("--provider", help="only this provider's models")
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=5.0,
        metavar="S",
        help="seconds the whole command may take, both requests included (default 5)",
    )
    parser.add_argument("--json", action="store_true", help="print both documents as JSON instead of a table")
    parser.set_defaults(run=run_status)


def endpoints(url: str) -> tuple[str, str]:
    """(summary URL, models URL) from what the user typed. Raises StatusError on a URL we cannot use."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise StatusError(f"--url {url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StatusError(f"--url must be an http(s) URL such as http://localhost:8000/health, got {url!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/models"):
        path = path[: -len("/models")]
    if not path:
        path = "/health"
    summary = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    models = urlunsplit((parts.scheme, parts.netloc, path + "/models", "", ""))
    return summary, models


def fetch_json(url: str, deadline: deadline_http.Deadline) -> dict[str, Any]:
    try:
        status, body = deadline_http.get(url, deadline, max_bytes=_MAX_BODY)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", exc)  # URLError wraps the socket's error
        if isinstance(reason, TimeoutError) or deadline.passed:
            raise StatusError(
                f"no complete answer from {url} within --timeout {deadline.seconds:g} s"
            ) from None
        raise StatusError(f"cannot reach {url}: {reason}") from None
    if not 200 <= status < 300 and status != 503:  # 503 may carry the document (status_code_unhealthy)
        raise StatusError(f"{url} answered HTTP {status}: {_snippet(body)}")
    try:
        document = strict_json.loads(body, max_bytes=_MAX_BODY)
    except strict_json.JSONInputError as exc:
        raise StatusError(f"{url} (HTTP {status}) did not answer JSON ({exc}): {_snippet(body)}") from None
    if not isinstance(document, dict):
        raise StatusError(f"{url} answered JSON that is not an object")
    return document


def _snippet(body: bytes) -> str:
    return printable(body[:120].decode("utf-8", "replace")) or "(empty body)"


def run_status(args: argparse.Namespace) -> int:
    deadline = deadline_http.Deadline(args.timeout)
    try:
        summary_url, models_url = endpoints(args.url)
        query = f"?{urlencode({'provider': args.provider})}" if args.provider else ""
        summary_document = fetch_json(summary_url + query, deadline)
        summary = _read(summary_from, summary_document, summary_url)
        detail_document = fetch_json(models_url + query, deadline)
        rows = _read(rows_from, detail_document, models_url)
        slos = _slos(summary_url + "/slo" + query, deadline)
    except StatusError as exc:
        return usage_error("status", exc)
    if args.json:
        document = {"summary": summary_document, "models": detail_document["models"], "slos": slos}
        print(json.dumps(document, indent=2))
    else:
        print(printable(f"{summary_url} — checked at {summary['checked_at']}"))
        for line in render_table(rows):
            print(line)
        print(overall_line(summary))
        for line in render_slo_table(slos):
            print(line)
    return EXIT_OK if summary["status"] == "healthy" else EXIT_UNHEALTHY


def _slos(url: str, deadline: deadline_http.Deadline) -> list[dict[str, Any]]:
    """The /health/slo entries; none from an app whose endpoint predates SLOs (404)."""
    try:
        document = fetch_json(url, deadline)
    except StatusError as exc:
        if "HTTP 404" in str(exc):
            return []
        raise
    if "slos" not in document:
        return []  # not an SLO document: an app serving the endpoint without SLO support
    entries = document["slos"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise StatusError(f"{url}: 'slos' must be a list of objects")
    return entries


def _read(read: Callable[[dict[str, Any]], T], document: dict[str, Any], url: str) -> T:
    try:
        return read(document)
    except ValueError as exc:
        raise StatusError(f"{url}: {exc}") from None
