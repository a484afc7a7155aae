"""``otel-model-health status --url http://host/health``: read a running app's health endpoint.

Fetches the summary (``/health``) and the detail (``/health/models``) served by ``health_asgi_app`` and
prints the same table as the other commands. Standard library only (urllib), so it works without extras.
A 503 with a health document is an answer (apps may configure 503 for unhealthy), not an error.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from .table import overall_line, render_table, row_from_detail

EXIT_OK: Final = 0
EXIT_UNHEALTHY: Final = 1
EXIT_UNREACHABLE: Final = 2
_MAX_BODY: Final = 8 * 1024 * 1024


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
        "--timeout", type=float, default=5.0, metavar="S", help="seconds per request (default 5)"
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


def fetch_json(url: str, timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read(_MAX_BODY)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(_MAX_BODY)
        exc.close()
        if status != 503:  # 503 may carry the document (status_code_unhealthy=503)
            raise StatusError(f"{url} answered HTTP {status}: {_snippet(body)}") from None
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StatusError(f"cannot reach {url}: {reason}") from None
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise StatusError(f"{url} (HTTP {status}) did not answer JSON: {_snippet(body)}") from None
    if not isinstance(document, dict):
        raise StatusError(f"{url} answered JSON that is not an object")
    return document


def _snippet(body: bytes) -> str:
    text = body[:120].decode("utf-8", "replace").strip()
    return " ".join(text.split()) or "(empty body)"


def run_status(args: argparse.Namespace) -> int:
    try:
        summary_url, models_url = endpoints(args.url)
        query = f"?{urlencode({'provider': args.provider})}" if args.provider else ""
        summary = fetch_json(summary_url + query, args.timeout)
        if "status" not in summary or not isinstance(summary.get("models"), dict):
            raise StatusError(f"{summary_url} is not a health summary (no 'status' and 'models')")
        detail = fetch_json(models_url + query, args.timeout)
        entries = detail.get("models")
        if not isinstance(entries, list):
            raise StatusError(f"{models_url} is not a model list (no 'models' array)")
        try:
            rows = [row_from_detail(entry) for entry in entries]
        except ValueError as exc:
            raise StatusError(f"{models_url}: {exc}") from None
    except StatusError as exc:
        print(f"otel-model-health status: error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if args.json:
        print(json.dumps({"summary": summary, "models": entries}, indent=2))
    else:
        print(f"{summary_url} — checked at {summary.get('checked_at', '?')}")
        for line in render_table(rows):
            print(line)
        print(overall_line(summary))
    return EXIT_OK if summary.get("status") == "healthy" else EXIT_UNHEALTHY
