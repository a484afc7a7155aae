"""Errors inside our telemetry code: caught, logged at debug, counted, never raised to the user."""

from __future__ import annotations

import itertools
import logging
from types import TracebackType
from typing import Final

logger: Final = logging.getLogger("otel_model_health")

# next() on itertools.count is atomic under the GIL: a lock-free counter.
_errors = itertools.count()
_errors_seen = 0


def report_internal_error(where: str, exc: BaseException | None = None) -> None:
    """Count and log (at debug) an error of our own code; ``exc`` defaults to the one being handled."""
    global _errors_seen
    _errors_seen = next(_errors) + 1
    logger.debug("otel_model_health: internal error in %s (swallowed)", where, exc_info=exc or True)


class guarded:  # lower case: it reads as a statement, ``with guarded("where"):``
    """``with guarded("where"): ...``: an ``Exception`` raised in the block is reported as an internal
    error of ``where`` and swallowed; the code after the block runs. Anything else (``KeyboardInterrupt``,
    ``GeneratorExit``, ``CancelledError``) passes through.

    A block that returns its result leaves the fallback after it: ``with guarded(...): return f()``
    then ``return None``. A ``with`` costs an object and two method calls where a bare ``try`` is free
    when nothing is raised, so code on the path of every call or every stream item keeps a bare
    ``try``."""

    __slots__ = ("_where",)

    def __init__(self, where: str) -> None:
        self._where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        report_internal_error(self._where, exc)
        return True


def internal_error_count() -> int:
    """How many internal errors were swallowed in this process (exported as a self-metric)."""
    return _errors_seen
