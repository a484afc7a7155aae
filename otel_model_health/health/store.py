"""Where the registry keeps its model states: the store seam.

A store holds one ``ModelState`` per key, groups them by provider (for outage detection), caps how
many it keeps, and counts the caller's mistakes of models it does not keep. It makes no decision: the
rules are ``ModelState``'s, the locking and the transitions the registry's. ``MemoryStore`` is the
default (one process); a store shared by a fleet implements the same protocol.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Final, Protocol

from .. import semconv
from ..keys import ModelKey
from ..outcomes import Outcome
from .model_state import ModelState
from .outages import ProviderGroup

# Caller's mistakes of models the store does not keep are counted per (provider, gateway, operation,
# outcome), under the model `_OTHER`: made-up model names must not become keys, series or /health rows.
MAX_UNATTRIBUTED: Final = 256
_OTHER: Final = semconv.OTHER_VALUE

Unattributed = dict[tuple[str, str, str, Outcome], int]


class HealthStore(Protocol):
    """Every method is called with the registry's lock held."""

    @property
    def evictions(self) -> int: ...

    def lookup(self, key: ModelKey) -> ModelState | None:
        """The key's state, or None; does not count as a use."""
        ...

    def admit(self, key: ModelKey, now: float) -> ModelState:
        """The key's state, created if new, and marked most recently used (may evict another key)."""
        ...

    def group(self, provider: str) -> ProviderGroup | None: ...

    def groups(self) -> list[ProviderGroup]: ...

    def states(self) -> list[ModelState]:
        """Every state, least recently used first."""
        ...

    def count_unattributed(self, key: ModelKey, operation: str, outcome: Outcome) -> None: ...

    def unattributed(self) -> Unattributed: ...

    def clear(self) -> None: ...


class MemoryStore:
    """States in this process: an LRU-ordered dict capped at ``max_keys``."""

    def __init__(self, max_keys: int, new_state: Callable[[ModelKey, float], ModelState]) -> None:
        self.max_keys = max(1, int(max_keys))
        self._new_state = new_state
        self._states: OrderedDict[ModelKey, ModelState] = OrderedDict()  # least recently used first
        self._groups: dict[str, ProviderGroup] = {}
        self._unattributed: Unattributed = {}
        self._evictions = 0

    @property
    def evictions(self) -> int:
        return self._evictions

    def lookup(self, key: ModelKey) -> ModelState | None:
        return self._states.get(key)

    def admit(self, key: ModelKey, now: float) -> ModelState:
        state = self._states.get(key)
        if state is not None:
            self._states.move_to_end(key)
            return state
        state = self._states[key] = self._new_state(key, now)
        group = self._groups.get(key.provider)
        if group is None:
            group = self._groups[key.provider] = ProviderGroup(key.provider)
        group.states[key] = state
        while len(self._states) > self.max_keys:
            old_key, _ = self._states.popitem(last=False)
            self._evictions += 1
            old_group = self._groups[old_key.provider]
            old_group.states.pop(old_key, None)
            if not old_group.states:
                del self._groups[old_key.provider]
        return state

    def group(self, provider: str) -> ProviderGroup | None:
        return self._groups.get(provider)

    def groups(self) -> list[ProviderGroup]:
        return list(self._groups.values())

    def states(self) -> list[ModelState]:
        return list(self._states.values())

    def count_unattributed(self, key: ModelKey, operation: str, outcome: Outcome) -> None:
        bucket = (key.provider, key.gateway, str(operation), outcome)
        table = self._unattributed
        if bucket not in table and len(table) >= MAX_UNATTRIBUTED:
            bucket = (_OTHER, _OTHER, _OTHER, outcome)
        table[bucket] = table.get(bucket, 0) + 1

    def unattributed(self) -> Unattributed:
        return dict(self._unattributed)

    def clear(self) -> None:
        self._states.clear()
        self._groups.clear()
        self._unattributed.clear()
        self._evictions = 0
