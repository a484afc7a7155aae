"""The per-model circuit breaker: CLOSED → OPEN → HALF_OPEN → CLOSED, with lazy, clock-driven steps.

The breaker is a small mutable object owned by one registry entry and only touched under the
registry's lock, so it needs no lock of its own. Time never drives it by itself: every read or record
first calls ``advance(now)``, which performs whatever the clock made due (OPEN → HALF_OPEN, backoff
decay, permit expiry). That keeps the breaker thread-free and ``get()`` always current.

Rules (docs/health-model.md explains the defaults):

* CLOSED → OPEN on a *failure* when the window's failure rate reaches ``failure_rate_threshold`` with at
  least ``minimum_calls`` outcomes in it, or after ``consecutive_failures`` failures in a row (0 turns
  that rule off). Unlike resilience4j, a success never trips the breaker, so the call linked to
  ``breaker_opened`` is always a failing one.
* OPEN waits ``open_wait_s * backoff_multiplier ** level`` (capped at ``max_open_wait_s``), ± ``jitter``;
  each opening raises the level by one. The level drops by one after twice the current wait (the wait
  of the last opening) spent CLOSED without opening.
* HALF_OPEN: the first ``half_open_trials`` successes/failures of calls *started* at or after the moment
  half-open began are trials. Any failing trial re-opens; when all succeed the breaker closes and its
  window is reset. Outcomes of earlier calls count in the window only.
* Outcomes recorded while OPEN count in the window but do not move the state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

from .._internal import report_internal_error
from ..keys import ModelKey
from .types import BreakerConfig, BreakerState, TransitionKind
from .window import CountWindow, TimeWindow, make_window

CLOSED: Final = BreakerState.CLOSED
OPEN: Final = BreakerState.OPEN
HALF_OPEN: Final = BreakerState.HALF_OPEN

# Index of each state in ``Breaker.entered``.
STATE_INDEX: Final[dict[BreakerState, int]] = {CLOSED: 0, OPEN: 1, HALF_OPEN: 2}


class RandomSource(Protocol):
    def random(self) -> float: ...


class Permit:
    """Leave to make one call to a model, from ``HealthRegistry.try_acquire``.

    In CLOSED every caller gets a permit and it tracks nothing. In HALF_OPEN a permit holds one of the
    ``half_open_trials`` trial slots of the current half-open period. The slot is given back when the
    next outcome of a call started in this period is recorded for the key (the instrumentation does
    that for you), when ``release()`` is called (call it when you did *not* make the call), when it
    expires (``permit_expiry_s`` after it was handed out), or when the period ends.
    """

    __slots__ = ("_owner", "expires_at", "key", "period")

    def __init__(
        self,
        key: ModelKey,
        *,
        expires_at: float | None,
        period: int,
        owner: Callable[[Permit], None] | None = None,
    ) -> None:
        self.key = key
        self.expires_at = expires_at  # registry clock; None for CLOSED permits
        self.period = period
        self._owner = owner  # the registry's release callback, or None when nothing is tracked

    @property
    def tracked(self) -> bool:
        """True while the permit holds a half-open trial slot (not yet returned, released or expired)."""
        return self._owner is not None

    def release(self) -> None:
        """Give the slot back without recording an outcome. Idempotent; never raises."""
        owner = self._owner
        self._owner = None
        if owner is not None:
            try:
                owner(self)
            except Exception:
                report_internal_error("Permit.release")

    def __repr__(self) -> str:
        return f"Permit(key={self.key!s}, expires_at={self.expires_at!r}, tracked={self.tracked})"


class Breaker:
    __slots__ = (
        "_decay_anchor",
        "_level_cap",
        "_random",
        "config",
        "consecutive",
        "entered",
        "half_open_since",
        "level",
        "open_until",
        "period",
        "permits",
        "state",
        "trials_done",
        "window",
    )

    def __init__(self, config: BreakerConfig, random: RandomSource) -> None:
        self.config = config
        self._random = random
        self.window: CountWindow | TimeWindow = make_window(config.window_kind, config.window_size)
        self.state = CLOSED
        self.consecutive = 0
        self.open_until = 0.0  # registry clock, meaningful when OPEN
        self.half_open_since = 0.0  # registry clock, meaningful when HALF_OPEN
        self.level = 0  # backoff level: the next opening waits nominal_wait(level)
        self._decay_anchor = 0.0
        self.trials_done = 0
        self.permits: list[Permit] = []  # outstanding permits of the current half-open period
        self.period = 0  # increases with every half-open period, so stale permits are recognised
        self.entered = [0, 0, 0]  # times CLOSED, OPEN, HALF_OPEN were entered (see STATE_INDEX)
        self._level_cap = _level_cap(config)

    # --- time --------------------------------------------------------------------------------
    def nominal_wait(self, level: int) -> float:
        c = self.config
        return float(min(c.open_wait_s * c.backoff_multiplier**level, c.max_open_wait_s))

    def advance(self, now: float) -> TransitionKind | None:
        """Apply what the clock made due. Returns HALF_OPEN when the OPEN wait elapsed."""
        self.window.advance(now)
        state = self.state
        if state is OPEN:
            if now >= self.open_until:
                self._enter_half_open()
                return TransitionKind.HALF_OPEN
            return None
        if state is CLOSED:
            if self.level:
                self._decay(now)
        elif self.permits:
            self._prune_permits(now)
        return None

    def _decay(self, now: float) -> None:
        while self.level:
            step = 2.0 * self.nominal_wait(self.level - 1)
            if step <= 0.0:
                self.level = 0
                return
            if now - self._decay_anchor < step:
                return
            self._decay_anchor += step
            self.level -= 1

    # --- outcomes (call advance(now) first) -------------------------------------------------
    def is_trial(self, started_at: float | None) -> bool:
        return self.state is HALF_OPEN and (started_at is None or started_at >= self.half_open_since)

    def on_outcome(
        self, success: bool, latency_s: float | None, started_at: float | None, now: float
    ) -> TransitionKind | None:
        """A success or failure. Returns BREAKER_OPENED, HALF_OPEN_FAILED or RECOVERED (closed)."""
        self.window.record(success, latency_s, now)
        state = self.state
        if success:
            self.consecutive = 0
            if state is HALF_OPEN and self.is_trial(started_at):
                self._return_permit()
                self.trials_done += 1
                if self.trials_done >= self.config.half_open_trials:
                    self._close(now)
                    return TransitionKind.RECOVERED
            return None
        self.consecutive += 1
        if state is CLOSED:
            if self._should_trip():
                self._open(now, None)
                return TransitionKind.BREAKER_OPENED
        elif state is HALF_OPEN and self.is_trial(started_at):
            self._open(now, None)
            return TransitionKind.HALF_OPEN_FAILED
        return None

    def on_other(self, started_at: float | None) -> None:
        """A rate-limited or neutral outcome: not a trial, but the call ended, so its permit returns."""
        if self.permits and self.is_trial(started_at):
            self._return_permit()

    def _should_trip(self) -> bool:
        c = self.config
        if c.consecutive_failures and self.consecutive >= c.consecutive_failures:
            return True
        w = self.window
        calls = w.successes + w.failures
        # Division, not multiplication: failures / calls is the correctly rounded ratio, so a rate
        # exactly at a decimal threshold (3/10 vs 0.3) compares equal.
        return calls >= c.minimum_calls and calls > 0 and w.failures / calls >= c.failure_rate_threshold

    # --- permits ----------------------------------------------------------------------------
    def permit_available(self, now: float) -> bool:
        """In HALF_OPEN: whether a trial slot is free (trials done + outstanding permits < trials)."""
        if self.permits:
            self._prune_permits(now)
        return self.trials_done + len(self.permits) < self.config.half_open_trials

    def hand_out_permit(self, key: ModelKey, now: float, owner: Callable[[Permit], None]) -> Permit | None:
        """In HALF_OPEN: a trial permit when a slot is free (it expires after ``permit_expiry_s``)."""
        if not self.permit_available(now):
            return None
        permit = Permit(key, expires_at=now + self.config.permit_expiry_s, period=self.period, owner=owner)
        self.permits.append(permit)
        return permit

    def take_back_permit(self, permit: Permit) -> None:
        """A released permit's slot is free again (a permit of an earlier period is simply ignored)."""
        if permit in self.permits:
            self.permits.remove(permit)

    def _prune_permits(self, now: float) -> None:
        kept: list[Permit] = []
        for permit in self.permits:
            if permit.expires_at is not None and permit.expires_at <= now:
                permit._owner = None  # expired: the slot is free again
            else:
                kept.append(permit)
        self.permits = kept

    def _return_permit(self) -> None:
        if self.permits:
            permit = self.permits.pop(0)
            permit._owner = None

    def _drop_permits(self) -> None:
        for permit in self.permits:
            permit._owner = None
        self.permits = []

    # --- state changes ----------------------------------------------------------------------
    def _open(self, now: float, wait_s: float | None) -> None:
        if wait_s is None:
            wait_s = self.nominal_wait(self.level)
            if self.level < self._level_cap:
                self.level += 1
            jitter = self.config.jitter
            if jitter:
                wait_s *= 1.0 + jitter * (2.0 * self._random.random() - 1.0)
        self.state = OPEN
        self.open_until = now + wait_s
        self.trials_done = 0
        self._drop_permits()
        self.entered[1] += 1

    def _enter_half_open(self) -> None:
        self.state = HALF_OPEN
        # Half-open began when the wait elapsed, not when someone happened to look.
        self.half_open_since = self.open_until
        self.trials_done = 0
        self._drop_permits()
        self.period += 1
        self.entered[2] += 1

    def _close(self, now: float) -> None:
        self.state = CLOSED
        self.window.reset()
        self.consecutive = 0
        self.trials_done = 0
        self._drop_permits()
        self._decay_anchor = now
        self.entered[0] += 1

    def force_open(self, now: float, wait_s: float | None) -> bool:
        """Open now for ``wait_s`` (None: the backoff wait). Returns True when the state changed."""
        was_open = self.state is OPEN
        self._open(now, wait_s)
        if was_open:
            self.entered[1] -= 1  # re-arming an open breaker is not a new entry into OPEN
        return not was_open

    def follow_open(self, open_until: float, level: int) -> bool:
        """Take an opening decided elsewhere (a fleet store's record): OPEN until ``open_until`` at backoff
        ``level``. True when this entered OPEN (it was CLOSED or HALF_OPEN)."""
        entered = self.state is not OPEN
        self.state = OPEN
        self.open_until = open_until
        self.level = max(0, min(int(level), self._level_cap))
        if entered:
            self.trials_done = 0
            self._drop_permits()
            self.entered[1] += 1
        return entered

    def follow_close(self, now: float) -> bool:
        """Take a recovery decided elsewhere. True when the state changed (it was not CLOSED)."""
        if self.state is CLOSED:
            return False
        self._close(now)
        return True

    def reset(self, now: float) -> bool:
        """Back to a fresh CLOSED breaker (backoff level 0). Returns True when the state changed."""
        changed = self.state is not CLOSED
        self._close(now)
        if not changed:
            self.entered[0] -= 1
        self.level = 0
        return changed


def _level_cap(config: BreakerConfig) -> int:
    """The highest useful backoff level: one past the first level whose wait reaches the cap."""
    if config.open_wait_s <= 0 or config.backoff_multiplier <= 1:
        return 1
    level = 0
    while level < 64 and config.open_wait_s * config.backoff_multiplier**level < config.max_open_wait_s:
        level += 1
    return level + 1
