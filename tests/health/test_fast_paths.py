"""Fast paths of the hot calls give what the general path gives, and are really taken.

* ``HealthRegistry.record``: a failure while the breaker is OPEN (the steady state of an outage) skips
  ``_record_slow_locked``; a reference registry that always takes the slow path must agree on every
  snapshot and transition.
* ``ModelHealthSpanProcessor``: attributes are read from the SDK's private ``BoundedAttributes._dict``
  when the span has the expected shape, else through ``span.attributes``. Both must give the same
  registry, and the fast path must be the one taken with the installed SDK (an SDK upgrade that changes
  the shape fails here instead of silently getting slower).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

from otel_model_health.health import processor as processor_module
from otel_model_health.health.processor import ModelHealthSpanProcessor, _span_attributes
from otel_model_health.health.registry import HealthRegistry, _Entry
from otel_model_health.health.types import BreakerConfig, HealthTransition
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Classification, Outcome, classify_span
from otel_model_health.testing.clock import ManualClock

WALL = 1_700_000_000.0


class SlowPathRegistry(HealthRegistry):
    """Takes ``_record_slow_locked`` where ``record`` would take the open-failure fast path."""

    def _record_open_failure_locked(
        self,
        entry: _Entry,
        operation: str,
        error_type: str | None,
        error_message: str | None,
        status_code: int | None,
        latency_s: float | None,
        now: float,
    ) -> None:
        self._record_slow_locked(
            entry,
            Outcome.FAILURE,
            operation,
            error_type,
            error_message,
            status_code,
            latency_s,
            None,
            None,
            None,
            now,
        )


class CountingRegistry(HealthRegistry):
    fast = 0

    def _record_open_failure_locked(self, *args: Any) -> None:
        self.fast += 1
        super()._record_open_failure_locked(*args)


def _pair(config: BreakerConfig, clock: ManualClock) -> list[tuple[HealthRegistry, list[HealthTransition]]]:
    pair: list[tuple[HealthRegistry, list[HealthTransition]]] = []
    for cls in (CountingRegistry, SlowPathRegistry):
        registry = cls(config=config, clock=clock, wall_clock=lambda: clock() + WALL, random=random.Random(7))
        transitions: list[HealthTransition] = []
        registry.subscribe(transitions.append)
        pair.append((registry, transitions))
    return pair


@pytest.mark.parametrize("window_kind", ["count", "time"])
@pytest.mark.parametrize("seed", range(6))
def test_open_failure_fast_path_matches_the_slow_path(window_kind: str, seed: int) -> None:
    config = BreakerConfig(
        window_kind=window_kind,  # type: ignore[arg-type]
        window_size=10,
        minimum_calls=3,
        consecutive_failures=3,
        open_wait_s=5.0,
        max_open_wait_s=40.0,
        jitter=0.2,
        stale_after_s=0.0,
    )
    clock = ManualClock(100.0)
    (fast, fast_transitions), (slow, slow_transitions) = _pair(config, clock)
    keys = [ModelKey(provider="p", model=m) for m in ("a", "b", "c")]
    rng = random.Random(seed)
    outcomes = [Outcome.FAILURE] * 6 + [Outcome.SUCCESS] * 3 + [Outcome.RATE_LIMITED, Outcome.NEUTRAL]
    for _ in range(600):
        clock.advance(rng.choice([0.0, 0.0, 0.1, 0.5, 2.0, 6.0]))
        key = rng.choice(keys)
        outcome = rng.choice(outcomes)
        kwargs: dict[str, Any] = {
            "operation": rng.choice(["inference", "embeddings"]),
            "latency_s": rng.choice([None, 0.2, 1.5]),
            "started_at": clock() - rng.choice([0.0, 1.0, 8.0]),
        }
        if outcome is Outcome.FAILURE:
            kwargs |= {"error_type": "503", "status_code": 503, "error_message": rng.choice([None, "down"])}
        for registry, _ in ((fast, None), (slow, None)):
            registry.record(key, outcome, **kwargs)
        assert fast.snapshot() == slow.snapshot()
    assert fast_transitions == slow_transitions
    assert isinstance(fast, CountingRegistry) and fast.fast > 50  # the fast path was really exercised
    assert fast.summary() == slow.summary()


def test_open_failure_fast_path_is_taken_only_while_open() -> None:
    clock = ManualClock(100.0)
    registry = CountingRegistry(config=BreakerConfig(jitter=0.0, open_wait_s=10.0), clock=clock)
    key = ModelKey(provider="p", model="m")
    for _ in range(5):  # consecutive_failures=5 by default: the fifth opens the breaker
        registry.record(key, Outcome.FAILURE)
    assert registry.fast == 0
    registry.record(key, Outcome.FAILURE)
    assert registry.fast == 1
    clock.advance(10.0)  # the wait elapsed: half-open is due, the slow path must see it
    registry.record(key, Outcome.FAILURE)
    assert registry.fast == 1


# --- span attributes -------------------------------------------------------------------------------------
class Captured(SimpleSpanProcessor):
    """Keeps the ReadableSpan the SDK hands to processors."""

    def __init__(self) -> None:
        super().__init__(InMemorySpanExporter())
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


ATTRIBUTES: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "http.response.status_code": 200,
}


def test_fast_path_is_taken_with_the_installed_sdk() -> None:
    captured = Captured()
    provider = TracerProvider()
    provider.add_span_processor(captured)
    started = provider.get_tracer("t").start_span("chat gpt-4o", attributes=ATTRIBUTES)
    started.end()
    assert isinstance(started, ReadableSpan)
    (ended,) = captured.spans
    for span in (ended, started):  # what processors receive, and the span object itself
        values = _span_attributes(span)
        raw = span._attributes
        assert isinstance(raw, BoundedAttributes)
        assert type(values) is dict and values is raw._dict
        assert values == dict(span.attributes or {}) == ATTRIBUTES
    provider.shutdown()


class OwnAttributes(ReadableSpan):
    """A span class with its own ``attributes``: the private field must not be trusted."""

    @property
    def attributes(self) -> Mapping[str, Any]:
        return MappingProxyType({"gen_ai.request.model": "other"})


@pytest.mark.parametrize(
    "span",
    [
        ReadableSpan("plain dict", attributes=dict(ATTRIBUTES), resource=Resource.get_empty()),
        ReadableSpan("none", attributes=None, resource=Resource.get_empty()),
        OwnAttributes("own", attributes=dict(ATTRIBUTES), resource=Resource.get_empty()),
    ],
    ids=["plain-dict", "none", "own-property"],
)
def test_fallback_gives_the_public_attributes(span: ReadableSpan) -> None:
    assert dict(_span_attributes(span)) == dict(span.attributes or {})


def test_unexpected_private_shape_takes_the_public_api() -> None:
    provider = TracerProvider()
    span = provider.get_tracer("t").start_span("chat", attributes=ATTRIBUTES)
    span.end()
    assert isinstance(span, ReadableSpan) and isinstance(span._attributes, BoundedAttributes)
    span._attributes._dict = MappingProxyType(dict(ATTRIBUTES))  # type: ignore[assignment]
    values = _span_attributes(span)
    assert type(values) is MappingProxyType and dict(values) == ATTRIBUTES
    provider.shutdown()


def _finished_spans() -> list[ReadableSpan]:
    """GenAI spans of another instrumentation, each under an outer span, as the SDK hands them over."""
    captured = Captured()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(captured)
    tracer = tracer_provider.get_tracer("foreign")
    specs: list[tuple[dict[str, Any], Status | None]] = [
        (ATTRIBUTES, None),
        ({**ATTRIBUTES, "http.response.status_code": 503}, Status(StatusCode.ERROR, "Error code: 503")),
        ({"gen_ai.request.model": "m", "gen_ai.system": "anthropic", "error.type": "RateLimitError"}, None),
        (
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.response.model": "r",
                "model_health.gateway": "litellm",
            },
            Status(StatusCode.ERROR, "x"),
        ),
        ({"gen_ai.operation.name": "execute_tool", "gen_ai.request.model": "t"}, None),
        ({"http.request.method": "GET"}, None),
        ({"gen_ai.operation.name": "chat"}, None),  # no model: not attributable
        ({"model_health.outcome": "success", "gen_ai.request.model": "ours"}, None),
    ]
    for attributes, status in specs:
        parent = tracer.start_span("outer", attributes={"gen_ai.request.model": "outer"})
        with trace.use_span(parent, end_on_exit=True):
            span = tracer.start_span("chat", attributes=attributes)
            if status is not None:
                span.set_status(status)
            span.end()
    tracer_provider.shutdown()
    return captured.spans


def test_processor_fast_and_fallback_paths_record_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    spans = _finished_spans()
    clock = ManualClock(100.0)
    results = []
    for fast in (True, False):
        if not fast:  # no class has this property object: every span takes span.attributes
            monkeypatch.setattr(processor_module, "_READABLE_SPAN_ATTRIBUTES", object())
        registry = HealthRegistry(config=BreakerConfig(jitter=0.0), clock=clock, wall_clock=lambda: WALL)
        transitions: list[HealthTransition] = []
        registry.subscribe(transitions.append)
        processor = ModelHealthSpanProcessor(registry)
        for span in spans:
            processor.on_end(span)
        results.append((registry.snapshot(), transitions, processor.tracked_span_count()))
    assert results[0] == results[1]
    states = results[0][0]
    # Outer spans count where the inner one did not (a tool, an HTTP call, a model-less span).
    assert [str(s.key) for s in states] == [
        "anthropic/m@direct",
        "openai/gpt-4o@direct",
        "unknown/outer@direct",
        "unknown/r@litellm",
    ]
    assert sum(states[2].outcome_totals.values()) == 3


def test_a_custom_classifier_gets_a_read_only_view() -> None:
    seen: list[Any] = []

    def classifier(attributes: Mapping[str, Any], *, status_is_error: bool) -> Classification:
        seen.append(attributes)
        with pytest.raises(TypeError):
            attributes["gen_ai.request.model"] = "changed"  # type: ignore[index]
        return classify_span(attributes, status_is_error=status_is_error)

    registry = HealthRegistry()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(ModelHealthSpanProcessor(registry, classifier=classifier))
    tracer_provider.get_tracer("t").start_span("chat", attributes=ATTRIBUTES).end()
    tracer_provider.shutdown()
    assert len(seen) == 1 and dict(seen[0]) == ATTRIBUTES
    assert registry.get(provider="openai", model="gpt-4o") is not None


def test_marks_pass_through_when_the_fast_path_reads_a_wrapper() -> None:
    """A foreign GenAI span around a counted one is not counted, with the fast path too."""
    registry = HealthRegistry()
    processor = ModelHealthSpanProcessor(registry)
    resource = Resource.get_empty()
    inner_ctx = SpanContext(trace_id=1, span_id=2, is_remote=False, trace_flags=TraceFlags(1))
    outer_ctx = SpanContext(trace_id=1, span_id=3, is_remote=False, trace_flags=TraceFlags(1))
    tracer_provider = TracerProvider()
    sdk_span = tracer_provider.get_tracer("t").start_span("chat", attributes=ATTRIBUTES)
    sdk_span.end()
    assert isinstance(sdk_span, ReadableSpan)
    inner = ReadableSpan(
        "chat", context=inner_ctx, parent=outer_ctx, attributes=sdk_span._attributes, resource=resource
    )
    outer = ReadableSpan("outer", context=outer_ctx, attributes=sdk_span._attributes, resource=resource)
    assert type(_span_attributes(inner)) is dict
    processor.on_end(inner)
    processor.on_end(outer)
    state = registry.get(provider="openai", model="gpt-4o")
    assert state is not None and sum(state.outcome_totals.values()) == 1
    tracer_provider.shutdown()
