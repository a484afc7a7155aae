"""Provider outages: the models of one provider failing together.

An outage begins when every known, non-stale model of a provider is unhealthy (at least two of them),
and ends when one of them is healthy again. The group makes the decision; the registry emits it.
"""

from __future__ import annotations

from collections.abc import Callable

from ..keys import ModelKey
from .model_state import HEALTHY, STALE, UNHEALTHY, ModelState


class ProviderGroup:
    """The models of one provider, and whether they are in an outage together."""

    __slots__ = ("name", "outage", "states")

    def __init__(self, name: str) -> None:
        self.name = name
        self.states: dict[ModelKey, ModelState] = {}
        self.outage = False

    def outage_begins(
        self, trigger: ModelState, now: float, advance: Callable[[ModelState], None]
    ) -> tuple[ModelKey, ...] | None:
        """After ``trigger``'s breaker opened: the unhealthy models when that makes an outage, else None.
        ``advance`` brings each other model up to ``now`` first (it may emit their clock steps)."""
        if self.outage:
            return None
        unhealthy: list[ModelKey] = []
        for state in list(self.states.values()):
            if state is not trigger:
                advance(state)
            status = state.status(now)
            if status is STALE:
                continue
            if status is not UNHEALTHY:
                return None
            unhealthy.append(state.key)
        if len(unhealthy) < 2:
            return None
        self.outage = True
        return tuple(unhealthy)

    def outage_ends(self, state: ModelState, now: float) -> bool:
        """During an outage: True (and the outage is over) when ``state`` is healthy again."""
        if not self.outage or state.status(now) is not HEALTHY:
            return False
        self.outage = False
        return True
