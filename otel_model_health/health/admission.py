"""May a call to a model go out now? The refusal (why, and until when) and the choice among candidates.

Pure decisions over one ``ModelState`` at ``now`` (call ``ModelState.advance`` first); the registry holds
the lock and hands out HALF_OPEN trial permits (``Breaker.hand_out_permit``). Enforcement
(``otel_model_health.enforcement``) and ``HealthRegistry.choose`` read them. See docs/enforcement.md.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from ..keys import ModelKey
from .breaker import HALF_OPEN, OPEN
from .model_state import ModelState
from .types import BreakerState

# Why a model is refused (``model_health.rejection.reason``).
BREAKER_OPEN: Final = "breaker_open"
TRIALS_BUSY: Final = "trials_busy"  # HALF_OPEN and every trial slot is taken by a call in flight
RATE_LIMITED: Final = "rate_limited"  # a 429's Retry-After (or the default wait) has not elapsed


class Refusal(NamedTuple):
    """Why ``key`` may not be called now. ``retry_after_s`` is the wait until it may be tried again:
    the longer of the breaker's OPEN wait and a rate limit; None while trials are busy (a slot frees
    when a trial call ends, which no clock can tell)."""

    key: ModelKey
    state: BreakerState
    reason: str
    retry_after_s: float | None

    def describe(self) -> str:
        wait = "" if self.retry_after_s is None else f"; retry after {self.retry_after_s:.1f} s"
        return f"model {self.key} is unavailable ({self.reason}, breaker {self.state}{wait})"


class Choice(NamedTuple):
    """The answer of ``HealthRegistry.choose``: the first candidate available now, or ``key`` None.

    ``refusals`` are the candidates passed over, in order. When nothing was chosen, ``retry_after_s``
    is the soonest wait after which some candidate may be tried again (None: every candidate is waiting
    for trials to end) and ``retry_at`` the same moment in epoch seconds."""

    key: ModelKey | None
    refusals: tuple[Refusal, ...] = ()
    retry_after_s: float | None = None
    retry_at: float | None = None


def refusal(state: ModelState, now: float) -> Refusal | None:
    """None when ``state``'s model may be called at ``now`` (in HALF_OPEN: a trial slot is free)."""
    breaker = state.breaker
    rate_wait = state.rate_limited_until - now
    breaker_state = breaker.state
    if breaker_state is OPEN:
        return Refusal(state.key, OPEN, BREAKER_OPEN, max(breaker.open_until - now, rate_wait, 0.0))
    if rate_wait > 0:
        return Refusal(state.key, breaker_state, RATE_LIMITED, rate_wait)
    if breaker_state is HALF_OPEN and not breaker.permit_available(now):
        return Refusal(state.key, HALF_OPEN, TRIALS_BUSY, None)
    return None


def soonest(refusals: tuple[Refusal, ...]) -> float | None:
    """The shortest known wait among ``refusals`` (None when none is known)."""
    return min((r.retry_after_s for r in refusals if r.retry_after_s is not None), default=None)
