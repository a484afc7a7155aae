"""The span processor with the real anthropic SDK's own `anthropic.messages.create` span (sampled in via an
SDK TracerProvider), against the simulated provider."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_model_health.health.processor import ModelHealthSpanProcessor
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.instrument.transport import instrument_client
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration  # the simulated provider on 127.0.0.1

MODEL = "claude-sonnet-4-6"
MESSAGES: Any = [{"role": "user", "content": "hello"}]


def _setup() -> tuple[HealthRegistry, TracerProvider, InMemorySpanExporter]:
    registry = HealthRegistry()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(ModelHealthSpanProcessor(registry))
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return registry, tracer_provider, exporter


def _client(sim: SimulatedProvider, tracer_provider: TracerProvider, http_client: Any = None) -> Any:
    return anthropic.Anthropic(
        base_url=sim.anthropic_base_url,
        api_key="sk-ant-test-0123456789abcdef",
        max_retries=1,
        http_client=http_client,
        open_telemetry={"tracer_provider": tracer_provider},
    )


def _totals(registry: HealthRegistry, provider: str = "anthropic", gateway: str = "direct") -> dict[Any, int]:
    state = registry.get(provider=provider, model=MODEL, gateway=gateway)
    assert state is not None
    return {k: v for k, v in state.outcome_totals.items() if v}


def test_the_sdk_span_alone_is_recorded_by_the_processor(sim: SimulatedProvider) -> None:
    registry, tracer_provider, exporter = _setup()
    sim.script(MODEL, Fault.overloaded(), times=2)  # the SDK retries once, then raises
    client = _client(sim, tracer_provider)
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)

    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["anthropic.messages.create"] * 2
    # One outcome per SDK span (the SDK's span covers its retries): a failure, then a success. The key
    # comes from the span's server.address as the transport's comes from the host: 127.0.0.1 is self-hosted.
    assert _totals(registry, gateway="self_hosted") == {
        ("inference", Outcome.FAILURE): 1,
        ("inference", Outcome.SUCCESS): 1,
    }
    state = registry.get(provider="anthropic", model=MODEL, gateway="self_hosted")
    assert state is not None and state.last_error is not None
    assert state.last_error.error_type == "529"  # the SDK span carries http.response.status_code


def test_one_model_one_key_whoever_saw_the_call(sim: SimulatedProvider) -> None:
    """The SDK's own span (processor) and our transport (no options) key the same calls alike."""
    registry, tracer_provider, _ = _setup()
    _client(sim, tracer_provider).messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    quiet = TracerProvider()  # the transport's own spans, not seen by the processor
    http_client = instrument_client(anthropic.DefaultHttpxClient(), registry=registry, tracer_provider=quiet)
    anthropic.Anthropic(
        base_url=sim.anthropic_base_url, api_key="sk-ant-test-0123456789abcdef", http_client=http_client
    ).messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    assert [str(k) for k in registry.model_keys()] == [f"anthropic/{MODEL}@self_hosted"]
    assert _totals(registry, gateway="self_hosted") == {("inference", Outcome.SUCCESS): 2}


def test_with_our_transport_inside_each_attempt_counts_once(sim: SimulatedProvider) -> None:
    registry, tracer_provider, exporter = _setup()
    http_client = instrument_client(
        anthropic.DefaultHttpxClient(), registry=registry, tracer_provider=tracer_provider, gateway="direct"
    )
    sim.script(MODEL, Fault.status(503), times=1)
    _client(sim, tracer_provider, http_client).messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)

    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["anthropic.messages.create", f"chat {MODEL}", f"chat {MODEL}"]
    # Two attempts seen by the transport; the SDK's span around them is not a third outcome.
    assert _totals(registry) == {("inference", Outcome.FAILURE): 1, ("inference", Outcome.SUCCESS): 1}
