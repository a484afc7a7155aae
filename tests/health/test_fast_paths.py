"""Fast paths of the hot calls give what the general path gives, and are really taken.

* ``ModelState.record``: a success while nothing can change state (CLOSED, no backoff, no incident) skips
  the clock step and the status; a state that always takes the general path must agree on every
  snapshot and step.
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
from otel_model_health.health.model_state import Emit, ModelState, Step
from otel_model_health.health.processor import ModelHealthSpanProcessor, _span_attributes
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import BreakerConfig, CallResult, HealthTransition
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Classification, Outcome, classify_span
from otel_model_health.testing.clock import ManualClock

WALL = 1_700_000_000.0


class GeneralPathState(ModelState):
    """Takes the general path for every outcome, where ``record`` would take its shortcut."""

    def record(self, result: CallResult, now: float, emit: Emit) -> None:
        self.record_general(result, now, emit)


class CountingState(ModelState):
    general = 0

    def record_general(self, result: CallResult, now: float, emit: Emit) -> None:
        self.general += 1
        super().record_general(result, now, emit)


@pytest.mark.parametrize("window_kind", ["count", "time"])
@pytest.mark.parametrize("seed", range(6))
def test_success_shortcut_matches_the_general_path(window_kind: str, seed: int) -> None:
    config = BreakerConfig(
        window_kind=window_kind,  # type: ignore[arg-type]
        window_size=10,
        minimum_calls=3,
        consecutive_failures=3,
        open_wait_s=5.0,
        max_open_wait_s=40.0,
        jitter=0.2,
        stale_after_s=30.0,
    )
    clock = ManualClock(100.0)
    key = ModelKey(provider="p", model="m")
    fast = CountingState(key, config, random.Random(7), clock())
    slow = GeneralPathState(key, config, random.Random(7), clock())
    fast_steps: list[Step] = []
    slow_steps: list[Step] = []
    rng = random.Random(seed)
    outcomes = [Outcome.SUCCESS] * 30 + [Outcome.FAILURE] * 3 + [Outcome.RATE_LIMITED, Outcome.NEUTRAL]
    for i in range(600):
        clock.advance(rng.choice([0.0, 0.0, 0.1, 0.5, 2.0, 6.0, 40.0]))
        outcome = rng.choice(outcomes)
        result = CallResult(
            outcome,
            rng.choice(["inference", "health_check"]),
            "503" if outcome is Outcome.FAILURE else None,
            rng.choice([None, "down"]) if outcome is Outcome.FAILURE else None,
            503 if outcome is Outcome.FAILURE else None,
            rng.choice([None, 0.2, 1.5]),
            clock() - rng.choice([0.0, 1.0, 8.0]),
            rng.choice([None, 1.0]),
            None,
        )
        fast.record(result, clock(), fast_steps.append)
        slow.record(result, clock(), slow_steps.append)
        if i % 7 == 0:
            fast.advance(clock(), fast_steps.append)
            slow.advance(clock(), slow_steps.append)
        assert fast.snapshot(clock(), lambda t: t + WALL) == slow.snapshot(clock(), lambda t: t + WALL)
    assert fast_steps == slow_steps
    assert 0 < fast.general <= 600 - 50  # the shortcut was really taken (50+ times), the general path too


def test_success_shortcut_is_taken_only_when_nothing_can_change() -> None:
    clock = ManualClock(100.0)
    state = CountingState(
        ModelKey(provider="p", model="m"), BreakerConfig(jitter=0.0), random.Random(1), clock()
    )
    steps: list[Step] = []
    state.record(CallResult(Outcome.SUCCESS), clock(), steps.append)
    assert state.general == 0
    state.record(CallResult(Outcome.FAILURE), clock(), steps.append)  # an incident begins
    state.record(CallResult(Outcome.SUCCESS), clock(), steps.append)
    assert state.general == 2 and [s.kind.value for s in steps] == ["first_failure"]


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
