"""The two documents of a remote health endpoint (``/health`` and ``/health/models``), checked field by field.

They come from another process, possibly a broken or hostile one, so every field the table uses is
type-checked here and a bad one is a ``ValueError`` naming it (the ``status`` command turns that into a
message and exit code 2). Only the checked fields go on: strings are printed through ``text.printable``
later, so what they contain cannot act on the terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .table import Row
from .text import shown

_COUNTS: Final = ("total", "healthy", "degraded", "unhealthy", "stale", "unknown")


def summary_from(document: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a ``/health`` summary that ``overall_line`` reads, in the same shape."""
    if not isinstance(document.get("models"), dict):
        raise ValueError("not a health summary (no 'models' object)")
    models = document["models"]
    providers = document.get("providers", {})
    if not isinstance(providers, dict):
        raise ValueError(f"'providers' must be an object, got {shown(providers)}")
    checked: dict[str, Any] = {}
    for name, entry in providers.items():
        if not isinstance(entry, dict):
            raise ValueError(f"providers[{shown(name)}] must be an object, got {shown(entry)}")
        checked[name] = {"status": _opt_text(entry, "status", f"providers[{shown(name)}]") or "unknown"}
    return {
        "status": _text(document, "status", "summary"),
        "checked_at": _opt_text(document, "checked_at", "summary") or "?",
        "models": {name: _count(models, name, "models") for name in _COUNTS if name in models},
        "providers": checked,
    }


def rows_from(document: Mapping[str, Any]) -> list[Row]:
    """One row per entry of a ``/health/models`` document."""
    entries = document.get("models")
    if not isinstance(entries, list):
        raise ValueError("not a model list (no 'models' array)")
    return [row_from_detail(entry, f"models[{i}]") for i, entry in enumerate(entries)]


def row_from_detail(detail: Any, where: str = "entry") -> Row:
    """One entry of ``GET /health/models`` (see ``asgi.model_detail``). Raises ValueError if malformed."""
    if not isinstance(detail, dict):
        raise ValueError(f"{where} must be an object, got {shown(detail)}")
    return Row(
        model=_text(detail, "model", where),
        provider=_text(detail, "provider", where),
        gateway=_opt_text(detail, "gateway", where) or "direct",
        status=_text(detail, "status", where),
        success_rate=_number(detail, "success_rate", where),
        calls_in_window=_count(detail, "calls_in_window", where) if "calls_in_window" in detail else 0,
        breaker=_opt_text(detail, "breaker_state", where) or "-",
        p50_s=_number(detail, "latency_p50_s", where),
        p95_s=_number(detail, "latency_p95_s", where),
        last_error=_opt_text(detail, "last_error_type", where),
    )


def _text(obj: Mapping[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{where}.{name} must be a string, got {shown(value)}")
    return value


def _opt_text(obj: Mapping[str, Any], name: str, where: str) -> str | None:
    return None if obj.get(name) is None else _text(obj, name, where)


def _count(obj: Mapping[str, Any], name: str, where: str) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}.{name} must be an integer >= 0, got {shown(value)}")
    return value


def _number(obj: Mapping[str, Any], name: str, where: str) -> float | None:
    """A number >= 0 or null. Infinite and NaN numbers never get here: ``strict_json`` refuses them."""
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{where}.{name} must be a number >= 0 or null, got {shown(value)}")
    return float(value)
