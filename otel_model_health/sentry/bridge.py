"""SentryBridge: a HealthRegistry listener that reports health incidents to Sentry.

The policy (what is captured, at which level, deduplicated how) is decided synchronously in the caller's
thread, under a small lock, because it is cheap and must see transitions in order. Everything that can
be slow (building the event, ``capture_event``, the reverse-link span) runs on one background worker
thread fed by a bounded queue, so a model call never waits on Sentry and never sees its errors.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any, Final, NamedTuple, Protocol

from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, ObservableCounter, Observation, get_meter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TracerProvider

from .. import semconv
from .._internal import guarded, report_internal_error
from .._version import __version__
from ..health.types import HealthListener, HealthTransition, TransitionKind
from ..keys import ModelKey
from ..option_values import check_trace_url_template
from . import events, slo_events
from .init import import_sentry_sdk

DEFAULT_QUEUE_SIZE: Final = 100
DEFAULT_FIRST_FAILURE_INTERVAL_S: Final = 600.0
# Dedup state is per ModelKey; the registry caps keys at 500, this caps the bridge if fed by anything else.
MAX_TRACKED_KEYS: Final = 4096
# The shortest SDK flush: long enough for the SDK to look at its queue and report what is pending.
_MIN_SDK_FLUSH_S: Final = 0.001

_RE_ARMING: Final = frozenset({TransitionKind.RECOVERED})


class Subscribable(Protocol):
    def subscribe(self, listener: HealthListener, /) -> Callable[[], None]: ...


class _Job(NamedTuple):
    transition: HealthTransition
    level: str


class SentryBridge:
    """Captures health incidents to Sentry: deduplicated, tagged, fingerprinted, linked to the trace.

    ``critical_models`` are model ids (``gpt-4o``) or ``provider/model`` pairs (``openai/gpt-4o``); their
    events are one level higher. ``trace_url_template`` (e.g. ``http://localhost:16686/trace/{trace_id}``)
    puts a link to the causing trace in the event. ``clock`` (monotonic seconds) drives the first-failure
    interval and is injectable for tests.
    """

    def __init__(
        self,
        *,
        critical_models: Iterable[str] = (),
        trace_url_template: str | None = None,
        first_failure_interval_s: float = DEFAULT_FIRST_FAILURE_INTERVAL_S,
        tracer_provider: TracerProvider | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sdk: ModuleType = import_sentry_sdk()
        if first_failure_interval_s < 0:
            raise ValueError(f"first_failure_interval_s must be >= 0, got {first_failure_interval_s!r}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size!r}")
        if trace_url_template is not None:  # fail at construction, not silently on every event
            check_trace_url_template("trace_url_template", trace_url_template)
        self._critical = frozenset(critical_models)
        self._trace_url_template = trace_url_template
        self._interval = float(first_failure_interval_s)
        self._clock = clock
        self._queue_size = queue_size
        self._tracer = trace.get_tracer(
            semconv.SCOPE_NAME, __version__, tracer_provider=tracer_provider, schema_url=semconv.SCHEMA_URL
        )
        self._dropped = 0
        self._captured = 0
        self._closed = False
        self._unsubscribe: Callable[[], None] | None = None
        # Dedup state: models in an incident, when each model's first failure was last captured,
        # providers in an outage.
        self._in_incident: dict[ModelKey, None] = {}
        self._first_failure_at: dict[ModelKey, float] = {}
        self._in_outage: set[str] = set()
        # The event sent for each incident step, for the status page's links: (key, kind, at) -> id.
        self._event_ids: dict[tuple[ModelKey, TransitionKind, float], str] = {}
        self._init_runtime()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _call_if_alive(ref, "_after_fork_in_child"))
        # Drain what is queued into the SDK before sentry-sdk's own atexit flush (atexit runs LIFO, and
        # the bridge is normally created after sentry_sdk.init).
        atexit.register(_call_if_alive, ref, "_at_exit")

    def _init_runtime(self) -> None:
        """Locks, queue and worker: fresh in ``__init__`` and again in a forked child."""
        self._lock = threading.Lock()  # policy state
        self._cond = threading.Condition()  # queue, busy flag, worker lifecycle
        self._jobs: deque[_Job] = deque()
        self._busy = False
        self._stopping = False
        self._worker: threading.Thread | None = None

    # --- public API ------------------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Events lost: queue full, the SDK discarded them (no client, sampled out), or capture failed."""
        return self._dropped

    @property
    def captured(self) -> int:
        """Events handed to the SDK and accepted (an event id came back)."""
        return self._captured

    def event_id(self, key: ModelKey, kind: TransitionKind, at: float) -> str | None:
        """The id of the event sent for the transition ``(key, kind, at)``, if one was (recent ones)."""
        return self._event_ids.get((key, kind, at))

    def attach(self, registry: Subscribable) -> SentryBridge:
        """Subscribe to ``registry``'s transitions; returns self."""
        self.detach()
        self._unsubscribe = registry.subscribe(self)
        return self

    def detach(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def __call__(self, transition: HealthTransition, /) -> None:
        """The listener: decide, enqueue, return. Never blocks on the network, never raises."""
        with guarded("sentry.bridge.listener"):
            level = self._decide(transition)
            if level is not None:
                self._enqueue(_Job(transition, level))

    def flush(self, timeout: float = 2.0) -> bool:
        """Hand queued events to the SDK and wait, up to ``timeout`` seconds in all, for it to send them.

        True only if the queue drained into the SDK and sentry-sdk's own flush ended with nothing left to
        send. Events the SDK refused are not part of it: they are counted in ``dropped``.
        """
        deadline = time.monotonic() + timeout
        with guarded("sentry.bridge.flush"):
            handed_over = self.wait_idle(timeout)
            sent = self._flush_sdk(max(0.0, deadline - time.monotonic()))
            return handed_over and sent
        return False

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued event was handed to the SDK (not sent). True if it was in time."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._jobs and not self._busy, timeout=max(0.0, timeout))

    def _flush_sdk(self, timeout: float) -> bool:
        """``sentry_sdk.flush``, and whether its send queue emptied in time.

        The SDK's flush returns nothing. It calls ``callback`` when events are still queued after a first
        0.1 s, then waits for the rest of ``timeout`` and returns early only once its queue is empty. So:
        no callback, nothing was pending; a callback and a return before the timeout, the queue emptied;
        a return at the timeout, events are still pending.
        """
        pending = False

        def on_pending(_count: int, _timeout: float) -> None:
            nonlocal pending
            pending = True

        # The SDK skips a flush of 0 s altogether, which would read as "nothing pending".
        timeout = max(timeout, _MIN_SDK_FLUSH_S)
        started = time.monotonic()
        self._sdk.flush(timeout=timeout, callback=on_pending)
        return not pending or time.monotonic() - started < timeout

    def close(self, timeout: float = 2.0) -> None:
        """Detach, let the worker hand over what is queued, and stop it. Later transitions are ignored.

        Waits at most ``timeout`` seconds; does not flush the SDK (``flush()`` does).
        """
        with guarded("sentry.bridge.detach"):
            self.detach()
        with self._cond:
            self._closed = True
            self._stopping = True
            worker = self._worker
            self._cond.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join(max(0.0, timeout))

    def register_dropped_metric(self, meter_provider: MeterProvider | None = None) -> ObservableCounter:
        """Register the observable counter ``model_health.sentry.dropped`` reading ``self.dropped``."""
        meter = get_meter(
            semconv.SCOPE_NAME, __version__, meter_provider=meter_provider, schema_url=semconv.SCHEMA_URL
        )
        ref = weakref.ref(self)

        def observe(_options: CallbackOptions) -> Iterator[Observation]:
            bridge = ref()
            if bridge is not None:
                yield Observation(bridge.dropped)

        return meter.create_observable_counter(
            semconv.METRIC_MH_SENTRY_DROPPED,
            callbacks=[observe],
            unit="{event}",
            description="Model-health Sentry events dropped (queue full, discarded by the SDK, or failed).",
        )

    # --- policy ----------------------------------------------------------------------------------

    def _is_critical(self, key: ModelKey) -> bool:
        critical = self._critical
        return bool(critical) and (
            key.model in critical or f"{key.provider}/{key.model}" in critical or str(key) in critical
        )

    def _decide(self, transition: HealthTransition) -> str | None:
        """The level to capture ``transition`` at, or None; updates dedup state."""
        kind = transition.kind
        key = transition.key
        with self._lock:
            if kind is TransitionKind.PROVIDER_OUTAGE:
                provider = events.outage_provider(transition)
                if provider in self._in_outage:
                    return None
                self._in_outage.add(provider)
                return None if transition.remote else events.BASE_LEVELS[kind]
            if kind is TransitionKind.PROVIDER_RECOVERED:
                self._in_outage.discard(events.outage_provider(transition))
                return None
            if kind is TransitionKind.SLO_ALERT_STARTED and transition.slo_alert is not None:
                return slo_events.level(transition)  # the registry emits one start per alert
            if kind in _RE_ARMING:
                self._in_incident.pop(key, None)
                return None
            if kind is TransitionKind.FIRST_FAILURE:
                if key in self._in_incident:
                    return None  # the registry emits once per incident; this guards against replays
                self._mark_incident(key)
                now = self._clock()
                last = self._first_failure_at.get(key)
                if last is not None and now - last < self._interval:
                    return None  # a flapping model: at most one first-failure event per interval
                self._first_failure_at[key] = now
                self._trim(self._first_failure_at)
            elif kind in (TransitionKind.BREAKER_OPENED, TransitionKind.HALF_OPEN_FAILED):
                if transition.before == transition.after:
                    return None  # no breaker state change: a further failure of the same incident
                self._mark_incident(key)
            else:
                return None  # half_open and anything unknown: not an incident step worth an alert
        if transition.remote:
            return None  # another process of the fleet won it and reports it (docs/fleet.md)
        level = events.BASE_LEVELS[kind]
        return events.escalate(level) if self._is_critical(key) else level

    def _mark_incident(self, key: ModelKey) -> None:
        self._in_incident[key] = None
        self._trim(self._in_incident)

    @staticmethod
    def _trim(table: dict[ModelKey, Any]) -> None:
        while len(table) > MAX_TRACKED_KEYS:
            del table[next(iter(table))]  # oldest first: dicts keep insertion order

    # --- queue and worker ------------------------------------------------------------------------

    def _enqueue(self, job: _Job) -> None:
        with self._cond:
            if self._closed or len(self._jobs) >= self._queue_size:
                self._dropped += 1
                return
            self._jobs.append(job)
            if self._worker is None or not self._worker.is_alive():
                self._stopping = False
                self._worker = threading.Thread(
                    target=self._run, name="otel_model_health.sentry", daemon=True
                )
                self._worker.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if not self._jobs:
                    return
                job = self._jobs.popleft()
                self._busy = True
            try:
                self._capture(job)
            except Exception:
                self._count_dropped()
                report_internal_error("sentry.bridge.capture")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _count_dropped(self) -> None:
        with self._cond:
            self._dropped += 1

    def _capture(self, job: _Job) -> None:
        sdk = self._sdk
        event = events.build_event(
            job.transition, level=job.level, trace_url_template=self._trace_url_template
        )
        # Fresh and cleared isolation and current scopes: whatever the worker thread's context holds
        # (user, tags, breadcrumbs, contexts of some request) stays out of the event.
        with sdk.isolation_scope() as isolation, sdk.new_scope() as current:
            isolation.clear()
            current.clear()
            current.add_event_processor(events.keep_own_fields)  # no sys.argv, modules, request ...
            event_id = sdk.capture_event(event)
        if event_id is None:
            self._count_dropped()
            return
        with self._cond:
            self._captured += 1
        transition = job.transition
        ids = self._event_ids  # written by this worker only; read by the page (a dict read is atomic)
        ids[(transition.key, transition.kind, transition.at)] = str(event_id)
        if len(ids) > MAX_TRACKED_KEYS:
            del ids[next(iter(ids))]
        with guarded("sentry.bridge.incident_span"):
            self._emit_incident_span(job.transition, str(event_id))

    def _emit_incident_span(self, transition: HealthTransition, event_id: str) -> None:
        """The reverse link: a zero-length span in the causing trace that names the Sentry event."""
        context = None
        if transition.trace_id is not None and transition.span_id is not None:
            flags = TraceFlags(TraceFlags.SAMPLED if transition.sampled is not False else TraceFlags.DEFAULT)
            parent = SpanContext(transition.trace_id, transition.span_id, is_remote=False, trace_flags=flags)
            context = trace.set_span_in_context(NonRecordingSpan(parent))
        key = transition.key
        provider = (
            events.outage_provider(transition)
            if transition.kind is TransitionKind.PROVIDER_OUTAGE
            else key.provider
        )
        now_ns = time.time_ns()
        span = self._tracer.start_span(
            semconv.SPAN_INCIDENT,
            context=context,
            kind=SpanKind.INTERNAL,
            start_time=now_ns,
            attributes={
                semconv.SENTRY_EVENT_ID: event_id,
                semconv.MH_TRANSITION: str(transition.kind),
                semconv.GEN_AI_PROVIDER_NAME: provider,
                semconv.GEN_AI_REQUEST_MODEL: key.model,
                semconv.MH_GATEWAY: key.gateway,
                semconv.MH_BREAKER_STATE: str(transition.after),
            },
        )
        span.end(end_time=now_ns)

    # --- process lifecycle -----------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        # The worker thread does not exist in the child and the locks may be held by a thread that
        # does not exist either: start over. Jobs queued in the parent are the parent's to send.
        self._init_runtime()  # a closed bridge stays closed: `_closed` is kept

    def _at_exit(self) -> None:
        if not self._closed:
            self.flush(timeout=2.0)


def _call_if_alive(ref: weakref.ReferenceType[SentryBridge], method: str) -> None:
    bridge = ref()
    if bridge is None:
        return
    with guarded(f"sentry.bridge.{method}"):
        getattr(bridge, method)()
