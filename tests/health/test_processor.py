"""ModelHealthSpanProcessor with real SDK spans shaped like other instrumentations' GenAI spans."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, Tracer

from otel_model_health import _internal
from otel_model_health.health.processor import ModelHealthSpanProcessor
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import BreakerConfig, BreakerState, HealthTransition, TransitionKind
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import ManualClock

WALL = 1_700_000_000.0
NS = 1_000_000_000


class Env:
    def __init__(self) -> None:
        self.clock = ManualClock(100.0)
        self.registry = HealthRegistry(
            config=BreakerConfig(jitter=0.0), clock=self.clock, wall_clock=lambda: self.clock() + WALL
        )
        self.transitions: list[HealthTransition] = []
        self.registry.subscribe(self.transitions.append)
        self.processor = ModelHealthSpanProcessor(self.registry)
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(self.processor)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer: Tracer = self.provider.get_tracer("test")

    def wall_ns(self, mono: float) -> int:
        return int((mono + WALL) * NS)

    def totals(self, provider: str, model: str, gateway: str = "direct") -> dict[Any, int]:
        state = self.registry.get(provider=provider, model=model, gateway=gateway)
        return {} if state is None else dict(state.outcome_totals)


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.provider.shutdown()


def openai_v2_span(
    env: Env,
    *,
    model: str = "gpt-4o",
    error_type: str | None = None,
    old_system: bool = False,
    start: float | None = None,
    end: float | None = None,
    **extra: Any,
) -> None:
    """Shaped like opentelemetry-instrumentation-openai-v2: `chat gpt-4o`, error.type = exception class."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "server.address": "api.openai.com",
        "server.port": 443,
        **extra,
    }
    attributes["gen_ai.system" if old_system else "gen_ai.provider.name"] = "openai"
    span = env.tracer.start_span(
        f"chat {model}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        start_time=None if start is None else env.wall_ns(start),
    )
    if error_type is None:
        span.set_attribute("gen_ai.response.model", f"{model}-2024-08-06")
        span.set_attribute("gen_ai.usage.input_tokens", 12)
    else:
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, f"{error_type}: Error code: boom"))
    span.end(end_time=None if end is None else env.wall_ns(end))


def anthropic_span(env: Env, *, status: int, model: str = "claude-sonnet-4-5") -> None:
    """Shaped like the anthropic SDK's own span around all retries."""
    span = env.tracer.start_span(
        "anthropic.messages.create",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": model,
            "http.response.status_code": status,
        },
    )
    if status >= 400:
        span.set_status(Status(StatusCode.ERROR, "overloaded_error"))
    span.end()


def test_openai_success_is_recorded_with_latency(env: Env) -> None:
    openai_v2_span(env, start=98.0, end=99.5)
    state = env.registry.get(provider="openai", model="gpt-4o")
    assert state is not None
    assert state.outcome_totals == {("inference", Outcome.SUCCESS): 1}
    assert state.latency_p50_s == pytest.approx(1.5)
    assert len(env.exporter.get_finished_spans()) == 1  # the span still reaches other processors


def test_old_gen_ai_system_attribute(env: Env) -> None:
    openai_v2_span(env, old_system=True)
    assert env.totals("openai", "gpt-4o") == {("inference", Outcome.SUCCESS): 1}


def test_rate_limit_error(env: Env) -> None:
    openai_v2_span(env, error_type="RateLimitError")
    state = env.registry.get(provider="openai", model="gpt-4o")
    assert state is not None
    assert state.outcome_totals == {("inference", Outcome.RATE_LIMITED): 1}
    assert state.last_error is not None and state.last_error.error_type == "429"
    assert not env.registry.is_available(provider="openai", model="gpt-4o")
    assert env.transitions == []


def test_timeouts_open_the_breaker_with_the_span_trace(env: Env) -> None:
    for _ in range(5):
        openai_v2_span(env, error_type="APITimeoutError")
    spans = env.exporter.get_finished_spans()
    opened = [t for t in env.transitions if t.kind is TransitionKind.BREAKER_OPENED]
    assert len(opened) == 1
    last = spans[-1].context
    assert last is not None
    assert (opened[0].trace_id, opened[0].span_id, opened[0].sampled) == (last.trace_id, last.span_id, True)
    assert opened[0].error is not None and opened[0].error.error_type == "timeout"
    assert opened[0].error.message == "APITimeoutError: Error code: boom"


def test_anthropic_sdk_span_status_codes(env: Env) -> None:
    anthropic_span(env, status=529)
    anthropic_span(env, status=200)
    anthropic_span(env, status=400)
    state = env.registry.get(provider="anthropic", model="claude-sonnet-4-5")
    assert state is not None
    assert state.outcome_totals == {
        ("inference", Outcome.FAILURE): 1,
        ("inference", Outcome.SUCCESS): 1,
        ("inference", Outcome.NEUTRAL): 1,
    }
    assert state.last_error is not None and state.last_error.status_code == 529
    assert state.last_error.error_type == "529"


def test_gateway_attribute_and_response_model_fallback(env: Env) -> None:
    span = env.tracer.start_span(
        "chat", attributes={"gen_ai.provider.name": "openai", "model_health.gateway": "OpenRouter"}
    )
    span.set_attribute("gen_ai.response.model", "gpt-4o-mini")
    span.end()
    assert env.totals("openai", "gpt-4o-mini", "openrouter") == {("inference", Outcome.SUCCESS): 1}


def test_our_spans_and_incident_spans_are_skipped(env: Env) -> None:
    ours = env.tracer.start_span(
        "chat gpt-4o",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "model_health.outcome": "success",
        },
    )
    ours.end()
    incident = env.tracer.start_span(
        "model_health.incident",
        attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.provider.name": "openai"},
    )
    incident.end()
    assert env.registry.get(provider="openai", model="gpt-4o") is None


def test_foreign_parent_over_our_recorded_call_is_not_counted_twice(env: Env) -> None:
    with env.tracer.start_as_current_span(
        "anthropic.messages.create",
        attributes={
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude",
            "gen_ai.operation.name": "chat",
        },
    ):
        # an HTTP span of another instrumentation between them, then ours (already recorded)
        with env.tracer.start_as_current_span("POST", attributes={"http.request.method": "POST"}):
            with env.tracer.start_as_current_span(
                "chat claude",
                attributes={"model_health.outcome": "failure", "gen_ai.request.model": "claude"},
            ):
                pass
    assert env.registry.get(provider="anthropic", model="claude") is None
    assert env.processor.tracked_span_count() == 0  # the mark travelled up and was consumed


def test_innermost_foreign_span_wins_and_siblings_count(env: Env) -> None:
    with env.tracer.start_as_current_span(
        "invoke_agent", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "outer"}
    ):
        openai_v2_span(env, model="gpt-4o")
        openai_v2_span(env, model="gpt-4o", error_type="InternalServerError")
    assert env.registry.get(provider="openai", model="outer") is None
    assert env.totals("openai", "gpt-4o") == {
        ("inference", Outcome.SUCCESS): 1,
        ("inference", Outcome.FAILURE): 1,
    }
    # Without a counted child, the same outer span is counted.
    with env.tracer.start_as_current_span(
        "chat outer",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "outer",
            "gen_ai.system": "openai",
        },
    ):
        with env.tracer.start_as_current_span("db query"):
            pass
    assert env.totals("openai", "outer") == {("inference", Outcome.SUCCESS): 1}


def test_tool_and_modelless_spans_are_not_model_calls(env: Env) -> None:
    env.tracer.start_span(
        "execute_tool search",
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.request.model": "gpt-4o"},
    ).end()
    env.tracer.start_span("chat", attributes={"gen_ai.operation.name": "chat"}).end()
    env.tracer.start_span("GET /", attributes={"http.response.status_code": 500}).end()
    assert env.registry.snapshot() == []


def test_started_at_maps_span_start_to_registry_clock(env: Env) -> None:
    for _ in range(5):
        openai_v2_span(env, error_type="InternalServerError")
    env.clock.advance(30.0)  # half-open begins at 130
    half_open_began = env.clock()
    env.clock.advance(5.0)
    # Started before half-open began: not a trial, even though it ends now.
    openai_v2_span(env, start=half_open_began - 1.0, end=env.clock())
    state = env.registry.get(provider="openai", model="gpt-4o")
    assert state is not None and state.breaker_state is BreakerState.HALF_OPEN
    for _ in range(3):
        openai_v2_span(env, start=half_open_began + 1.0, end=env.clock())
    state = env.registry.get(provider="openai", model="gpt-4o")
    assert state is not None and state.breaker_state is BreakerState.CLOSED


def test_marks_are_bounded() -> None:
    registry = HealthRegistry()
    processor = ModelHealthSpanProcessor(registry)
    resource = Resource.get_empty()  # ReadableSpan would otherwise detect a resource per span
    for i in range(1, 50_001):
        span = ReadableSpan(
            name="chat x",
            context=SpanContext(trace_id=1, span_id=i, is_remote=False, trace_flags=TraceFlags(1)),
            parent=SpanContext(trace_id=1, span_id=10**9 + i, is_remote=False),
            attributes={"model_health.outcome": "success"},
            resource=resource,
        )
        processor.on_end(span)
    assert processor.tracked_span_count() == 10_000
    small = ModelHealthSpanProcessor(registry, max_tracked_spans=3)
    for i in range(1, 10):
        small._mark(i)
    assert small.tracked_span_count() == 3
    small.shutdown()
    assert small.tracked_span_count() == 0


class Weird:
    """Not a span at all."""

    name = "chat"
    attributes = {"gen_ai.request.model": object()}


def test_garbage_never_raises(env: Env) -> None:
    before = _internal.internal_error_count()
    env.tracer.start_span(
        "chat",
        attributes={
            "gen_ai.operation.name": 42,
            "gen_ai.request.model": 7,
            "gen_ai.provider.name": ["a", "b"],
            "http.response.status_code": "five hundred",
            "error.type": 3.5,
        },
    ).end()
    env.processor.on_end(Weird())  # type: ignore[arg-type]
    env.processor.on_end(None)  # type: ignore[arg-type]
    env.processor.on_end(
        ReadableSpan(
            name="chat",
            context=None,
            attributes={"gen_ai.request.model": "m", "gen_ai.system": "x"},
            resource=Resource.get_empty(),
        )
    )
    assert _internal.internal_error_count() >= before + 1
    assert env.registry.get(provider="x", model="m") is not None  # a span without timing still counts


def test_raising_classifier_is_swallowed() -> None:
    registry = HealthRegistry()

    def bad(attributes: Any, *, status_is_error: bool) -> Any:
        raise ValueError("bad classifier")

    processor = ModelHealthSpanProcessor(registry, classifier=bad)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    provider.get_tracer("t").start_span("chat m", attributes={"gen_ai.request.model": "m"}).end()
    assert registry.snapshot() == []
    assert processor.force_flush() is True
    provider.shutdown()


@pytest.mark.parametrize(
    ("extra", "provider", "model", "gateway"),
    [
        ({}, "openai", "gpt-4o", "direct"),  # api.openai.com
        ({"server.address": "openrouter.ai"}, "anthropic", "anthropic/claude-3-opus", "openrouter"),
        ({"server.address": "127.0.0.1"}, "openai", "gpt-4o", "self_hosted"),
        ({"server.address": "llm.internal.example"}, "openai", "gpt-4o", "llm.internal.example"),
        (
            {"server.address": "", "url.full": "https://openrouter.ai/api/v1/chat/completions"},
            "anthropic",
            "anthropic/claude-3-opus",
            "openrouter",
        ),
    ],
)
def test_key_comes_from_the_host_as_the_transport_derives_it(
    env: Env, extra: dict[str, Any], provider: str, model: str, gateway: str
) -> None:
    span_model = "anthropic/claude-3-opus" if provider == "anthropic" else "gpt-4o"
    openai_v2_span(env, model=span_model, **extra)
    assert [str(k) for k in env.registry.model_keys()] == [f"{provider}/{model}@{gateway}"]
