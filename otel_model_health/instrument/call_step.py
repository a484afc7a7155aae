"""``with CallStep(m):`` runs one step of the user's call with the call's span current.

A step is the call itself, an ``await`` of it, or one step of its stream. An exception leaving the
step ends the call with that exception and is never suppressed, so the caller gets the same object
with the same traceback (a ``with`` block adds no frame to it). ``CallStep(None)``, for a call that
is not measured, does nothing. The transport and the decorators share it; the decorators' subclasses
read more from the exception (``raised``).
"""

from __future__ import annotations

from .measurement import CallMeasurement


class CallStep:
    __slots__ = ("_token", "m")

    def __init__(self, m: CallMeasurement | None) -> None:
        self.m = m
        self._token: object | None = None

    def __enter__(self) -> None:
        m = self.m
        if m is not None and not m.done:
            self._token = m.activate()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        m = self.m
        if m is None:
            return
        m.deactivate(self._token)
        self._token = None
        if exc is not None:
            self.raised(m, exc_type, exc)

    def raised(self, m: CallMeasurement, exc_type: type[BaseException] | None, exc: BaseException) -> None:
        m.finish(exception=exc)
