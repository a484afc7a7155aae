"""Turns the steps model states emit into ``HealthTransition`` values, and decides provider outages.

The registry owns one ``Announcer`` and calls it with its lock held: a state's ``record`` / ``advance``
emits ``Step`` values through ``emit_in_context`` (made once, so a record allocates no closure) or an
``emitter``; each becomes a transition in ``scratch``, which the registry publishes at the end of its
locked section. A breaker opening may begin its provider's outage (``check_outage``); any step may end
it (``after_step``). Wall-clock times are converted once per section (``wall``), so a record never reads
the wall clock unless it emits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from opentelemetry.trace import SpanContext

from ..keys import ModelKey
from ..outcomes import Outcome
from ..slo.tracker import AlertChange, evaluate_all
from .model_state import UNHEALTHY, ModelState, Step
from .recent import TIMELINE_KINDS, note
from .store import HealthStore
from .transitions import slo_transition, transition
from .types import CallResult, HealthTransition, TransitionKind

_OPENED: Final = frozenset({TransitionKind.BREAKER_OPENED, TransitionKind.HALF_OPEN_FAILED})


class Announcer:
    def __init__(
        self, store: HealthStore, clock: Callable[[], float], wall_clock: Callable[[], float]
    ) -> None:
        self._store = store
        self._clock = clock
        self._wall_clock = wall_clock
        self.scratch: list[HealthTransition] = []  # the current section's transitions, in order
        # wall - monotonic, read once per locked section that needs it; the registry sets it back to None
        # at the end of every section (an attribute store: a method call would cost every record more).
        self.offset: float | None = None
        # The record under way (set by the registry): what ``emit_in_context`` attaches to its steps.
        self.state: ModelState | None = None
        self.result = CallResult(Outcome.SUCCESS)
        self.now = 0.0
        self.emit_bound = self.emit_in_context  # made once: reading a method makes a new object
        self.slo_bound = self.slo_alert_in_context
        # Providers in an outage: a record looks for a recovery only when > 0 (an evicted provider may leave
        # it too high, which costs a look, never a wrong answer).
        self.outages = 0

    def wall(self, mono: float) -> float:
        offset = self.offset
        if offset is None:
            offset = self.offset = self._wall_clock() - self._clock()
        return mono + offset

    def reset(self) -> None:
        """After a fork: a section the parent had under way is not this process's."""
        self.scratch = []
        self.offset = None

    def emit_in_context(self, step: Step) -> None:
        """The ``emit`` of a record (``state``, ``result`` and ``now`` set by the registry)."""
        state = self.state
        if state is not None:
            result, now = self.result, self.now
            self.emit(state, step, now, result.span_context, result.health_operation)
            if step.kind in _OPENED:
                self.check_outage(state, step, now, result.span_context, result.health_operation)

    def emitter(
        self, state: ModelState, now: float, span_context: SpanContext | None, operation: str
    ) -> Callable[[Step], None]:
        def emit(step: Step) -> None:
            self.emit(state, step, now, span_context, operation)
            if step.kind in _OPENED:
                self.check_outage(state, step, now, span_context, operation)

        return emit

    def advance(self, state: ModelState, now: float) -> None:
        """Apply what the clock made due for one state, emitting clock-driven transitions."""
        state.advance(now, self.emitter(state, now, None, state.last_operation))
        if state.slo is not None:
            self.state, self.now = state, now
            evaluate_all(state.slo, now, self.slo_bound)
        self.after_step(state, now, None, state.last_operation)

    def emit(
        self,
        state: ModelState,
        step: Step,
        now: float,
        span_context: SpanContext | None,
        operation: str,
        *,
        provider: str | None = None,
        provider_models: tuple[ModelKey, ...] = (),
    ) -> None:
        change = transition(
            state,
            step,
            now,
            self.wall,
            span_context,
            operation,
            provider=provider,
            provider_models=provider_models,
        )
        self.scratch.append(change)
        if provider is None and change.kind in TIMELINE_KINDS:
            state.timeline = note(state.timeline, change)

    def slo_alert_in_context(self, change: AlertChange) -> None:
        """An SLO alert started or resolved during a record or a read (``state``)."""
        state = self.state
        if state is not None:
            self.scratch.append(slo_transition(state, change, self.now, self.wall))

    def check_outage(
        self, state: ModelState, step: Step, now: float, span_context: SpanContext | None, operation: str
    ) -> None:
        group = self._store.group(state.key.provider)
        if group is None:
            return
        models = group.outage_begins(
            state,
            now,
            lambda other: other.advance(now, self.emitter(other, now, None, other.last_operation)),
        )
        if models is not None:
            self.outages += 1
            outage = step._replace(kind=TransitionKind.PROVIDER_OUTAGE, at=None)
            self.emit(
                state, outage, now, span_context, operation, provider=group.name, provider_models=models
            )

    def after_step(
        self, state: ModelState, now: float, span_context: SpanContext | None, operation: str
    ) -> None:
        group = self._store.group(state.key.provider)
        if group is None or not group.outage_ends(state, now):
            return
        self.outages -= 1
        breaker_state = state.breaker.state
        step = Step(TransitionKind.PROVIDER_RECOVERED, breaker_state, breaker_state, UNHEALTHY)
        self.emit(
            state,
            step,
            now,
            span_context,
            operation,
            provider=group.name,
            provider_models=tuple(group.states),
        )
