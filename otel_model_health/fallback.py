"""Fallback across models in order of preference, following the health signal (docs/enforcement.md).

``call_with_fallback(candidates, call)`` asks ``HealthRegistry.choose`` for the first candidate that may
be called now and calls ``call(key)``. When that call is refused (enforcement decided between the choice
and the call: a trial slot was taken, a breaker opened) or fails with one of ``fall_back_on``, it moves
on to the next candidate. When no candidate is left, it raises ``NoModelAvailableError`` carrying the
registry's ``Choice``: every refusal, and the soonest time any candidate may be tried again.

``acall_with_fallback`` is the same for an async ``call``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from . import defaults
from .enforcement import is_refusal
from .health.admission import Choice, soonest
from .health.registry import HealthRegistry
from .keys import ModelKey

T = TypeVar("T")


class NoModelAvailableError(Exception):
    """No candidate may be called now. ``choice.refusals`` says why for each; ``retry_after_s`` (and
    ``choice.retry_at``, epoch seconds) is the soonest wait after which one may be tried again (None: not
    known, every candidate waits for trial calls to end)."""

    def __init__(self, choice: Choice) -> None:
        reasons = ", ".join(f"{r.key}: {r.reason}" for r in choice.refusals) or "no candidates"
        wait = "" if choice.retry_after_s is None else f"; retry after {choice.retry_after_s:.1f} s"
        super().__init__(f"no model available ({reasons}{wait})")
        self.choice = choice
        self.retry_after_s = choice.retry_after_s


class _Candidates:
    """The state of one fallback: the candidates not yet tried, and what to raise when none is left."""

    def __init__(
        self,
        candidates: Sequence[ModelKey],
        registry: HealthRegistry | None,
        fall_back_on: tuple[type[BaseException], ...],
    ) -> None:
        self.all = tuple(candidates)
        self.left = list(self.all)
        self.registry = registry if registry is not None else defaults.default_registry()
        self.fall_back_on = fall_back_on
        self.last_error: Exception | None = None

    def next(self) -> ModelKey:
        choice = self.registry.choose(self.left)
        if choice.key is None:
            raise NoModelAvailableError(self._final()) from self.last_error
        # Those passed over are not tried again in this fallback, nor is the chosen one if it fails.
        del self.left[: self.left.index(choice.key) + 1]
        return choice.key

    def _final(self) -> Choice:
        """Every candidate's refusal now (those that failed without being refused have none), and the
        soonest time one may be tried again: the answer the caller needs."""
        refusals = tuple(r for key in self.all for r in self.registry.choose((key,)).refusals)
        wait = soonest(refusals)
        retry_at = None if wait is None else self.registry.wall_time() + wait
        return Choice(None, refusals, wait, retry_at)

    def moves_on(self, exc: Exception) -> bool:
        self.last_error = exc
        return is_refusal(exc) or isinstance(exc, self.fall_back_on)


def call_with_fallback(
    candidates: Sequence[ModelKey],
    call: Callable[[ModelKey], T],
    *,
    registry: HealthRegistry | None = None,
    fall_back_on: tuple[type[BaseException], ...] = (),
) -> T:
    """``call(key)`` for the first healthy candidate, then the next on a refusal or a ``fall_back_on``
    error; ``NoModelAvailableError`` when none is left (chained to the last error, if any)."""
    state = _Candidates(candidates, registry, fall_back_on)
    while True:
        key = state.next()
        try:
            return call(key)
        except Exception as exc:
            if not state.moves_on(exc):
                raise


async def acall_with_fallback(
    candidates: Sequence[ModelKey],
    call: Callable[[ModelKey], Awaitable[T]],
    *,
    registry: HealthRegistry | None = None,
    fall_back_on: tuple[type[BaseException], ...] = (),
) -> T:
    """``call_with_fallback`` for an async ``call``."""
    state = _Candidates(candidates, registry, fall_back_on)
    while True:
        key = state.next()
        try:
            return await call(key)
        except Exception as exc:
            if not state.moves_on(exc):
                raise
