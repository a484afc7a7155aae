"""Provider outages: the models of one provider failing together.

An outage begins when every known, non-stale model of a provider is unhealthy (at least two of them),
and ends when one of them is healthy again. The group makes the decision; the registry emits it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..keys import ModelKey
from .model_state import HEALTHY, STALE, UNHEALTHY, ModelState, Step
from .types import TransitionKind


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


def follow_provider(
    group: ProviderGroup, kind: TransitionKind, models: Sequence[ModelKey]
) -> tuple[ModelState, Step, tuple[ModelKey, ...]] | None:
    """Another process of the fleet won ``kind`` (docs/fleet.md): the group follows it, and the step to
    deliver (with the model it is about and the outage's models), or None when the group already agrees.
    """
    begins = kind is TransitionKind.PROVIDER_OUTAGE
    if group.outage is begins or not group.states:
        return None
    group.outage = begins
    known = [group.states[key] for key in models if key in group.states]
    state = known[0] if known else next(iter(group.states.values()))
    breaker = state.breaker.state
    step = Step(kind, breaker, breaker, HEALTHY if begins else UNHEALTHY)
    found = tuple(models) if begins else tuple(group.states)
    return state, step, found
