"""HealthRegistry: the per-model state machines behind one lock, their transitions, and routing.

(Over 400 lines: it is the engine's public API, whose docstrings are most of it: reads, routing, manual
control, the keyword form of ``record``, and the fleet store's hooks at the end. What the code does per
section is short: take the lock, find the state, let the clock step it, ask the module that decides.
The decisions are in ``model_state``, ``admission`` and ``outages``; steps become transitions in
``announcer``; containers are in ``store``; the Redis side is in ``fleet/``. Splitting the API across
mixins would only move the lock-and-lookup lines into classes that share private state.)

The registry serialises access, feeds each state the clock, hands the steps a state emits to its
``Announcer``, and delivers the resulting transitions to listeners.

Concurrency: one registry lock, held only for O(1) work per key (a record, a lazy clock step, a snapshot
of one state), never across user code; transitions are delivered after it is released (``dispatch``).

Times inside are the registry clock (monotonic seconds); snapshots and transitions carry wall-clock
epoch seconds, converted at snapshot time so ``record()`` never reads the wall clock.
"""

from __future__ import annotations

import os
import random as _random
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final, TypeVar

from opentelemetry.trace import SpanContext

from .. import semconv
from .._internal import report_internal_error
from ..keys import DIRECT_GATEWAY, ModelKey
from ..outcomes import Outcome
from ..slo import snapshot
from ..slo.definition import SLO
from ..slo.status import SloStatus, series_status
from ..slo.tracker import Series, compile_slos, track
from . import admission
from .admission import Choice, Refusal
from .announcer import Announcer
from .breaker import CLOSED, HALF_OPEN, Permit, RandomSource
from .dispatch import Dispatcher
from .model_state import ModelState, callers_mistake
from .outages import follow_provider
from .recent import Recent, read_recent
from .store import HealthStore, MemoryStore, Unattributed
from .transitions import transition
from .types import (
    BreakerConfig,
    CallResult,
    HealthListener,
    HealthTransition,
    ModelHealthState,
    TransitionKind,
)

if TYPE_CHECKING:
    from .fleet import RedisStore
    from .fleet.codec import FleetRecord, RemoteOutcome

_SUCCESS: Final = Outcome.SUCCESS
_OPENED: Final = frozenset({TransitionKind.BREAKER_OPENED, TransitionKind.HALF_OPEN_FAILED})

_new_tuple: Final = tuple.__new__
_T = TypeVar("_T")

# Registries alive in this process, so a forked child can give each fresh locks.
_REGISTRIES: Final[weakref.WeakSet[HealthRegistry]] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for registry in list(_REGISTRIES):
        registry._reinit_locks()


os.register_at_fork(after_in_child=_after_fork_in_child)


class HealthRegistry:
    """Health of every model this process talks to. See docs/health-model.md."""

    def __init__(
        self,
        *,
        config: BreakerConfig | None = None,
        max_keys: int = 500,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        random: RandomSource | None = None,
        slos: Sequence[SLO] = (),
        store: RedisStore | str | None = None,
    ) -> None:
        """``store``: None keeps health in this process; a ``RedisStore`` (or its URL) shares it with every
        process using the same Redis and prefix (docs/fleet.md)."""
        self.config = config if config is not None else BreakerConfig()
        self.max_keys = max(1, int(max_keys))
        self._clock = clock
        self._wall_clock = wall_clock
        rng: RandomSource = random if random is not None else _random.Random()
        config_ = self.config
        # SLOs (docs/slo.md): a key gets its series when first admitted, and only if an SLO matches it.
        self.slos = tuple(slos)
        # A fleet's series count on the wall clock's buckets, so histories line up (slo/snapshot.py).
        plans = compile_slos(self.slos, wall_clock() - clock() if store is not None else 0.0)

        def new_state(key: ModelKey, now: float) -> ModelState:
            state = ModelState(key, config_, rng, now)
            if plans:
                state.slo = track(plans, key, now)
            return state

        self._lock = threading.Lock()
        self._fleet: RedisStore | None = None
        self._remote_section = False  # the current locked section follows the fleet: its steps are remote
        if isinstance(store, str):
            from .fleet import RedisStore  # noqa: PLC0415 (the fleet package loads only when used)

            store = RedisStore(store)
        if store is None:
            self._store: HealthStore = MemoryStore(self.max_keys, new_state)
        else:
            self._fleet = store
            self._store = store
        self._dispatcher = Dispatcher()
        # Steps → transitions (queued for delivery before the lock is released) and provider outages.
        self._announce = Announcer(self._store, clock, wall_clock)
        self._wall = self._announce.wall
        _REGISTRIES.add(self)
        if self._fleet is not None:
            names = tuple(slo.name for slo in self.slos)
            self._fleet.bind(self, self.max_keys, new_state, self.config.stale_after_s, names)

    @property
    def fleet(self) -> RedisStore | None:
        """The fleet store, when health is shared (docs/fleet.md); None for this process only."""
        return self._fleet

    # --- clocks ------------------------------------------------------------------------------
    def now(self) -> float:
        """The registry's clock (monotonic seconds): pass it back as ``started_at``."""
        return self._clock()

    def to_monotonic(self, epoch_s: float) -> float:
        """Map a wall-clock time (epoch seconds) onto the registry clock."""
        return self._clock() - (self._wall_clock() - epoch_s)

    @property
    def evictions(self) -> int:
        """How many keys were evicted because the registry held more than ``max_keys``."""
        return self._store.evictions

    # --- listeners ---------------------------------------------------------------------------
    def subscribe(self, listener: HealthListener) -> Callable[[], None]:
        """Call ``listener(transition)`` for every transition; returns a callable that unsubscribes."""
        return self._dispatcher.subscribe(listener)

    def unsubscribe(self, listener: HealthListener) -> None:
        self._dispatcher.unsubscribe(listener)

    @contextmanager
    def _section(self) -> Iterator[None]:
        """A locked section: transitions it caused are published in order and delivered after the lock
        is released."""
        if self._fleet is not None and not self._fleet.started:
            self._fleet.ensure_started()  # after a fork: this process's own flusher and subscriber
        try:
            with self._lock:
                try:
                    yield
                finally:
                    self._publish()
        finally:
            if self._dispatcher.pending:
                self._dispatcher.deliver()

    # --- recording ---------------------------------------------------------------------------
    def record(
        self,
        key: ModelKey,
        outcome: Outcome,
        *,
        operation: str = semconv.OPERATION_INFERENCE,
        error_type: str | None = None,
        error_message: str | None = None,
        status_code: int | None = None,
        latency_s: float | None = None,
        started_at: float | None = None,
        retry_after_s: float | None = None,
        span_context: SpanContext | None = None,
        first_chunk_s: float | None = None,
    ) -> None:
        """Record one model call's outcome (for clients on neither httpx nor httpx2: Bedrock, gRPC …).
        ``operation`` is ``model_health.operation``: ``inference`` or ``health_check``. Never raises."""
        # tuple.__new__ directly: a NamedTuple's own __new__ is a Python function, a third of this call.
        result = _new_tuple(
            CallResult,
            (
                outcome,
                operation,
                error_type,
                error_message,
                status_code,
                latency_s,
                started_at,
                retry_after_s,
                span_context,
                first_chunk_s,
            ),
        )
        self.record_result(key, result)

    def record_result(self, key: ModelKey, result: CallResult) -> None:
        """Record one model call's result. Never raises."""
        try:
            # _section() inlined: this is the hot path, and a generator-based context manager costs more
            # than the whole common record.
            with self._lock:
                try:
                    now = self._clock()
                    if result.outcome is not _SUCCESS and (
                        mistake := callers_mistake(result, self._store.lookup(key))
                    ):
                        self._count_callers_mistake(key, result, mistake, now)
                    else:
                        state = self._store.admit(key, now)
                        announce = self._announce
                        announce.state = state
                        announce.result = result
                        announce.now = now
                        state.record(result, now, announce.emit_bound)
                        if state.slo is not None:
                            for series in state.slo:
                                series.record(result, now, announce.slo_bound)
                        if announce.outages:
                            announce.after_step(state, now, result.span_context, result.health_operation)
                        if self._fleet is not None:
                            self._fleet.queue(key, result, now)
                finally:
                    self._publish()
            if self._dispatcher.pending:
                self._dispatcher.deliver()
        except Exception:
            report_internal_error("HealthRegistry.record")

    def _publish(self) -> None:
        """Under the lock, at the end of a section: move its transitions to the queue, in order."""
        announce = self._announce
        announce.offset = None
        scratch = announce.scratch
        if scratch:
            fleet = self._fleet
            if fleet is None:
                self._dispatcher.enqueue(scratch)
            elif self._remote_section:
                self._dispatcher.enqueue(fleet.hold(scratch, remote=True))
            else:
                self._dispatcher.enqueue(fleet.hold(scratch))  # breaker steps wait for Redis's verdict
            scratch.clear()
        self._remote_section = False

    def _count_callers_mistake(self, key: ModelKey, result: CallResult, outcome: Outcome, now: float) -> None:
        """Counted and visible in metrics; no window, incident, status or LRU touch, no new key."""
        state = self._store.lookup(key)
        if state is None:
            self._store.count_unattributed(key, result.health_operation, outcome)
            return
        operation = state.last_operation
        state.count_only(
            outcome,
            result.health_operation,
            result.started_at,
            now,
            self._announce.emitter(state, now, None, operation),
        )
        self._announce.after_step(state, now, None, operation)

    def has_succeeded(self, key: ModelKey) -> bool:
        """The key has recorded a success since it was first seen (or last evicted): a 404 for it is then
        the model's failure (removed, deprecated), not a caller's made-up name."""
        state = self._store.lookup(key)  # a dict read: atomic, no lock needed for a yes/no
        return state is not None and state.has_succeeded()

    def tracks(self, key: ModelKey) -> bool:
        """The key is one the registry keeps (bounded by ``max_keys``)."""
        return self._store.lookup(key) is not None

    def unattributed_outcomes(self) -> Unattributed:
        """Caller's mistakes (unknown models, credential errors) of models the registry does not track:
        ``(provider, gateway, operation, outcome) → count``, bounded."""
        with self._lock:
            return self._store.unattributed()

    # --- reads ------------------------------------------------------------------------------
    def get(self, *, provider: str, model: str, gateway: str = DIRECT_GATEWAY) -> ModelHealthState | None:
        """The current health of one model, or None if it was never recorded (or was evicted)."""
        key = ModelKey(provider=provider, model=model, gateway=gateway)
        with self._section():
            state = self._store.lookup(key)
            if state is None:
                return None
            now = self._clock()
            self._announce.advance(state, now)
            return state.snapshot(now, self._wall)

    def _read_each(self, read: Callable[[ModelState, float], _T]) -> list[_T]:
        """``read(state, now)`` of every tracked model, each after its clock step."""
        with self._lock:
            states = self._store.states()
        found: list[_T] = []
        for state in states:
            # One state per locked section: records of other threads interleave.
            with self._section():
                now = self._clock()
                self._announce.advance(state, now)
                found.append(read(state, now))
        return found

    def snapshot(self) -> list[ModelHealthState]:
        """Every tracked model, sorted by (provider, model, gateway)."""
        snapshots = self._read_each(lambda state, now: state.snapshot(now, self._wall))
        snapshots.sort(key=lambda s: (s.key.provider, s.key.model, s.key.gateway))
        return snapshots

    def recent(self) -> list[tuple[ModelHealthState, Recent]]:
        """Every tracked model's snapshot with its last hour per minute and its incident timeline (the
        status page's read, docs/health-endpoint.md), sorted like ``snapshot()``."""
        found = self._read_each(
            lambda state, now: (state.snapshot(now, self._wall), read_recent(state, now, self._wall))
        )
        found.sort(key=lambda pair: (pair[0].key.provider, pair[0].key.model, pair[0].key.gateway))
        return found

    def slo_statuses(self) -> list[SloStatus]:
        """Every (model, SLO) series: burn rate per window, budget left, active alerts (docs/slo.md)."""
        with self._lock:
            states = [state for state in self._store.states() if state.slo is not None]
        statuses: list[SloStatus] = []
        for state in states:
            with self._section():
                now = self._clock()
                self._announce.advance(state, now)
                assert state.slo is not None
                statuses.extend(series_status(series, now, self._wall(now)) for series in state.slo)
        statuses.sort(key=lambda s: (s.slo, s.key.provider, s.key.model, s.key.gateway))
        return statuses

    def provider_outages(self) -> set[str]:
        """The providers whose models are in an outage together."""
        with self._lock:
            return {group.name for group in self._store.groups() if group.outage}

    def summary(self, *, provider: str | None = None) -> dict[str, Any]:
        """The /health JSON document (docs/health-endpoint.md); built by ``health_document``."""
        # The document is presentation and lives next to the ASGI app; this entry point stays for the API.
        from ..health_document import health_document  # noqa: PLC0415

        return health_document(self, provider=provider)

    def wall_time(self) -> float:
        """The wall clock the registry's snapshots use (epoch seconds)."""
        return self._wall_clock()

    # --- routing ----------------------------------------------------------------------------
    def is_available(self, *, provider: str, model: str, gateway: str = DIRECT_GATEWAY) -> bool:
        """False when OPEN, HALF_OPEN with no trial slot left, or rate-limited. Unknown models: True."""
        key = ModelKey(provider=provider, model=model, gateway=gateway)
        with self._section():
            state = self._store.lookup(key)
            if state is None:
                return True
            now = self._clock()
            self._announce.advance(state, now)
            return state.available(now)

    def try_acquire(self, *, provider: str, model: str, gateway: str = DIRECT_GATEWAY) -> Permit | None:
        """A permit to call the model now, or None (OPEN, no trial slot left, or rate-limited).

        CLOSED (and unknown models): always a permit, which tracks nothing. HALF_OPEN: at most
        ``half_open_trials`` slots per half-open period (see ``Permit``).
        """
        key = ModelKey(provider=provider, model=model, gateway=gateway)
        decision = self.admit(key)
        if decision is None:
            state = self._store.lookup(key)
            return Permit(key, expires_at=None, period=0 if state is None else state.breaker.period)
        return decision if isinstance(decision, Permit) else None

    def admit(self, key: ModelKey) -> Permit | Refusal | None:
        """Enforcement's question: may a call to ``key`` go out now? None: yes (CLOSED, or a model never
        seen); a ``Permit``: yes, as one of the HALF_OPEN trials; a ``Refusal``: no (docs/enforcement.md).
        """
        state = self._store.lookup(key)  # a dict read: atomic
        if state is None:
            return None
        # The common case without the lock: CLOSED and not rate-limited has no clock-driven step that could
        # refuse (a stale read lets one call through, which is what passive mode does with every call).
        if state.breaker.state is CLOSED and self._clock() >= state.rate_limited_until:
            return None
        with self._section():
            now = self._clock()
            self._announce.advance(state, now)
            refused = admission.refusal(state, now)
            if refused is not None:
                return refused
            breaker = state.breaker
            if breaker.state is CLOSED:
                return None
            fleet = self._fleet
            if fleet is None:
                return breaker.hand_out_permit(key, now, self._release_permit)
            release = _FleetRelease(self, fleet, fleet.versions.get(key, 0))
            permit = breaker.hand_out_permit(key, now, release)
        return None if permit is None else self._fleet_slot(key, permit, release)

    def _fleet_slot(self, key: ModelKey, permit: Permit, release: _FleetRelease) -> Permit | Refusal:
        """A HALF_OPEN permit's fleet-wide slot, taken outside the lock (a Redis round trip): without an
        answer from Redis the local permit stands; with no slot left in the fleet, a refusal."""
        member = release.fleet.acquire_permit(key, self.config.permit_expiry_s, self.config.half_open_trials)
        if member is False:
            permit.release()
            return Refusal(key, HALF_OPEN, admission.TRIALS_BUSY, None)
        if isinstance(member, str):
            release.member = member
        return permit

    def choose(self, candidates: Iterable[ModelKey]) -> Choice:
        """The first of ``candidates`` (in order of preference) that may be called now: OPEN, rate-limited
        and HALF_OPEN models whose trial slots are all taken are passed over. Takes no permit: an enforcing
        call takes its own, so a slot taken in between refuses that call (fall back again, see
        ``otel_model_health.fallback``). When none may be called, ``key`` is None and ``retry_after_s`` /
        ``retry_at`` say when the soonest may be tried again."""
        refusals: list[Refusal] = []
        with self._section():
            now = self._clock()
            for key in candidates:
                state = self._store.lookup(key)
                if state is None:
                    return Choice(key, tuple(refusals))
                self._announce.advance(state, now)
                refused = admission.refusal(state, now)
                if refused is None:
                    return Choice(key, tuple(refusals))
                refusals.append(refused)
            passed = tuple(refusals)
            wait = admission.soonest(passed)
            return Choice(None, passed, wait, None if wait is None else self._wall(now + wait))

    def _release_permit(self, permit: Permit) -> None:
        with self._lock:
            state = self._store.lookup(permit.key)
            if state is not None:
                state.breaker.take_back_permit(permit)

    # --- manual control ---------------------------------------------------------------------
    def force_open(
        self, *, provider: str, model: str, gateway: str = DIRECT_GATEWAY, duration_s: float | None = None
    ) -> None:
        """Open the breaker now, for ``duration_s`` or (None) the next backoff wait.

        Emits ``breaker_opened`` (with no span) unless it was already OPEN, and starts an incident
        that ends with ``recovered`` when the breaker closes again.
        """
        key = ModelKey(provider=provider, model=model, gateway=gateway)
        with self._section():
            now = self._clock()
            state = self._store.lookup(key) or self._store.admit(key, now)
            state.force_open(now, duration_s, self._announce.emitter(state, now, None, state.last_operation))

    def reset(self, *, provider: str, model: str, gateway: str = DIRECT_GATEWAY) -> None:
        """Back to CLOSED with an empty window, backoff level 0 and no rate limit. Totals are kept.

        Emits ``recovered`` when the model was in an incident or its breaker was not CLOSED.
        """
        key = ModelKey(provider=provider, model=model, gateway=gateway)
        with self._section():
            state = self._store.lookup(key)
            if state is None:
                return
            now = self._clock()
            state.reset(now, self._announce.emitter(state, now, None, state.last_operation))
            self._announce.after_step(state, now, None, state.last_operation)

    def clear(self) -> None:
        """Forget every model (tests, or an operator's reset). Listeners stay subscribed."""
        with self._lock:
            self._store.clear()
            self._announce.outages = 0

    def model_keys(self) -> list[ModelKey]:
        """The tracked keys, least recently recorded first."""
        with self._lock:
            return [state.key for state in self._store.states()]

    # --- the fleet store's side (docs/fleet.md); called from its threads, never with the lock held ----------
    def fleet_apply(self, outcomes: Sequence[RemoteOutcome]) -> None:
        """Other processes' outcomes, applied to this process's states at the time they were recorded
        (never later than now). Transitions they cause here go to Redis to be arbitrated like our own."""
        with self._section():
            store = self._store
            announce = self._announce
            for item in outcomes:
                now = min(self._clock(), self.to_monotonic(item.at))
                result = item.result
                state = store.admit(item.key, now)
                announce.state, announce.result, announce.now = state, result, now
                state.record_remote(result, now, announce.emit_bound)
                if state.slo is not None:  # fleet-wide SLO history; alerts are arbitrated (docs/slo.md)
                    for series in state.slo:
                        series.record(result, now, announce.slo_bound)
                if announce.outages:
                    announce.after_step(state, now, None, result.health_operation)

    def fleet_adopt(self, key: ModelKey, record: FleetRecord) -> None:
        """Follow a transition another process won (or a record read on reconnect); the steps this makes
        here are delivered as remote."""
        fleet = self._fleet
        if fleet is None:
            return
        with self._section():
            now = self._clock()
            state = self._store.lookup(key) or self._store.admit(key, now)
            fleet.versions[key] = record.version
            state.adopt(
                record.transition_kind(),
                self.to_monotonic(record.open_until),
                record.level,
                now,
                self._announce.emitter(state, now, None, state.last_operation),
            )
            self._announce.after_step(state, now, None, state.last_operation)
            self._remote_section = True

    def fleet_provider(self, kind: TransitionKind, provider: str, models: Sequence[ModelKey]) -> None:
        """A provider outage (or its end) another process won: followed here and delivered as remote,
        unless this process already follows it (then its listeners saw it once already)."""
        with self._section():
            group = self._store.group(provider)
            change = None if group is None else follow_provider(group, kind, models)
            if change is not None:
                self._announce.outages += 1 if kind is TransitionKind.PROVIDER_OUTAGE else -1
                state, step, found = change
                now = self._clock()
                made = transition(
                    state,
                    step,
                    now,
                    self._wall,
                    None,
                    state.last_operation,
                    provider=provider,
                    provider_models=found,
                )
                self._dispatcher.enqueue([replace(made, remote=True)])

    def fleet_slo_snapshots(self) -> list[tuple[ModelKey, Series, bytes]]:
        """Every SLO series' history, for a process that starts later (slo/snapshot.py)."""
        with self._lock:
            states = [state for state in self._store.states() if state.slo is not None]
        found: list[tuple[ModelKey, Series, bytes]] = []
        for state in states:
            with self._lock:
                found.extend(
                    (state.key, series, snapshot.encode(series, self._clock())) for series in state.slo or ()
                )
        return found

    def fleet_slo_seed(self, key: ModelKey, slo: str, blob: bytes) -> bool:
        """Add a fleet snapshot of ``key``'s series of ``slo`` to this process's (slo/snapshot.py)."""
        with self._section():
            state = self._store.lookup(key) or self._store.admit(key, self._clock())
            return any(
                snapshot.seed(s, blob, self._clock()) for s in state.slo or () if s.plan.slo.name == slo
            )

    def fleet_deliver(self, transitions: Sequence[HealthTransition]) -> None:
        """Transitions Redis arbitrated (or that could not reach it), to this process's listeners."""
        with self._lock:
            self._dispatcher.enqueue(transitions)
        if self._dispatcher.pending:
            self._dispatcher.deliver()

    def close(self, timeout: float = 2.0) -> None:
        """Flush a fleet store's queue and stop its threads (a no-op for the in-memory store)."""
        if self._fleet is not None:
            self._fleet.close(timeout)

    def _reinit_locks(self) -> None:
        # After fork() only the forking thread exists in the child; a lock some other parent thread
        # held would stay locked forever. State guarded by it is O(1)-consistent enough to go on with.
        self._lock = threading.Lock()
        self._dispatcher.after_fork_in_child()
        self._announce.reset()


class _FleetRelease:
    """A half-open permit's owner under a fleet store: the local slot, and the fleet slot once granted."""

    __slots__ = ("fleet", "member", "period", "registry")

    def __init__(self, registry: HealthRegistry, fleet: RedisStore, period: int) -> None:
        self.registry = registry
        self.fleet = fleet
        self.period = period
        self.member: str | None = None

    def __call__(self, permit: Permit) -> None:
        self.registry._release_permit(permit)
        if self.member is not None:
            self.fleet.release_permit(permit.key, self.period, self.member)
