"""Errors inside our telemetry code: caught, logged at debug, counted, never raised to the user."""

from __future__ import annotations

import itertools
import logging
from typing import Final

logger: Final = logging.getLogger("otel_model_health")

# next() on itertools.count is atomic under the GIL: a lock-free counter.
_errors = itertools.count()
_errors_seen = 0


def report_internal_error(where: str) -> None:
    """Call from an ``except Exception`` block inside telemetry code."""
    global _errors_seen
    _errors_seen = next(_errors) + 1
    logger.debug("otel_model_health: internal error in %s (swallowed)", where, exc_info=True)


def internal_error_count() -> int:
    """How many internal errors were swallowed in this process (exported as a self-metric)."""
    return _errors_seen
