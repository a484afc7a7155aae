"""Built-in probes against the simulated provider (OpenAI / Anthropic wire formats), run by a monitor."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_model_health import defaults
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import ModelHealthState
from otel_model_health.outcomes import Outcome
from otel_model_health.probes import AnthropicProbe, HealthMonitor, OpenAIProbe
from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration  # the simulated provider on 127.0.0.1


@pytest.fixture
def provider() -> Iterator[SimulatedProvider]:
    with SimulatedProvider() as sim:
        yield sim


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = HealthRegistry()
    defaults.set_defaults(registry=registry, tracer_provider=tracer_provider, meter_provider=None)
    yield exporter
    defaults.set_defaults(registry=None, tracer_provider=None, meter_provider=None)


def _state(registry: HealthRegistry, provider: str, model: str) -> ModelHealthState:
    state = registry.get(provider=provider, model=model)
    assert state is not None
    return state


async def _run_once(monitor: HealthMonitor) -> None:
    monitor.tick()
    await monitor.drain()


async def test_openai_chat_and_anthropic_message_probes(
    provider: SimulatedProvider, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-0123456789abcdef")
    registry = HealthRegistry()
    monitor = HealthMonitor(registry=registry, jitter=0.0, timeout_s=5)
    monitor.add(OpenAIProbe("gpt-4o", base_url=provider.openai_base_url))
    monitor.add(AnthropicProbe("claude-sonnet-4-6", base_url=provider.anthropic_base_url, api_key="sk-ant-x"))
    await _run_once(monitor)
    await monitor.aclose()

    assert _state(registry, "openai", "gpt-4o").outcome_totals[("health_check", Outcome.SUCCESS)] == 1
    claude = _state(registry, "anthropic", "claude-sonnet-4-6")
    assert claude.outcome_totals[("health_check", Outcome.SUCCESS)] == 1

    chat = provider.requests_for("gpt-4o")[0]
    assert chat.path == "/v1/chat/completions"
    assert chat.body is not None and chat.body["max_tokens"] == 1
    assert chat.headers["authorization"] == "[REDACTED]"  # a key was sent (the log hides it)
    message = provider.requests_for("claude-sonnet-4-6")[0]
    assert message.path == "/v1/messages"
    assert message.body is not None and message.body["max_tokens"] == 1
    assert message.headers["anthropic-version"] == "2023-06-01"

    finished = [s for s in spans.get_finished_spans() if s.attributes]
    # Per probe: the decorator's span and, inside it, the transport's attempt span (the counted one,
    # with what only the wire shows: server address, HTTP status, response model and usage).
    attempts = {s.attributes["gen_ai.request.model"]: s for s in finished if "server.address" in s.attributes}
    assert set(attempts) == {"gpt-4o", "claude-sonnet-4-6"}
    assert len(finished) == 4
    for span in finished:
        assert span.attributes is not None
        assert span.attributes["model_health.operation"] == "health_check"
        assert span.attributes["model_health.outcome"] == "success"
    for span in attempts.values():
        assert span.attributes is not None
        assert span.attributes["http.response.status_code"] == 200
        assert span.attributes["gen_ai.usage.output_tokens"] >= 1
        assert span.parent is not None
        assert any(p.context.span_id == span.parent.span_id for p in finished)
    assert "sk-test" not in repr(OpenAIProbe("gpt-4o", api_key="sk-test-secret"))


async def test_models_mode_lists_the_model(provider: SimulatedProvider, spans: InMemorySpanExporter) -> None:
    registry = HealthRegistry()
    monitor = HealthMonitor(registry=registry, jitter=0.0, timeout_s=5)
    monitor.add(OpenAIProbe("gpt-4o", mode="models", base_url=provider.openai_base_url))
    monitor.add(OpenAIProbe("no-such-model", mode="models", base_url=provider.openai_base_url))
    await _run_once(monitor)
    await monitor.aclose()
    assert _state(registry, "openai", "gpt-4o").last_outcome is Outcome.SUCCESS
    missing = _state(registry, "openai", "no-such-model")
    assert missing.last_error is not None and missing.last_error.error_type == "model_not_found"
    assert [r.path for r in provider.requests] == ["/v1/models", "/v1/models"]


@pytest.mark.parametrize(
    ("fault", "outcome", "error_type"),
    [
        (Fault.status(503), Outcome.FAILURE, "503"),
        (Fault.status(529), Outcome.FAILURE, "529"),
        (Fault.status(429), Outcome.RATE_LIMITED, "429"),
        (Fault.model_not_found(), Outcome.FAILURE, "model_not_found"),
    ],
)
async def test_faults_become_outcomes(
    provider: SimulatedProvider, spans: InMemorySpanExporter, fault: Fault, outcome: Outcome, error_type: str
) -> None:
    provider.script("*", fault)
    registry = HealthRegistry()
    monitor = HealthMonitor(registry=registry, jitter=0.0, timeout_s=5)
    monitor.add(OpenAIProbe("gpt-4o", base_url=provider.openai_base_url, api_key="sk-x"))
    monitor.add(AnthropicProbe("claude-haiku-4-5", base_url=provider.anthropic_base_url, api_key="sk-x"))
    await _run_once(monitor)
    await monitor.aclose()
    for name, model in (("openai", "gpt-4o"), ("anthropic", "claude-haiku-4-5")):
        state = _state(registry, name, model)
        assert state.last_outcome is outcome, (model, state)
        assert state.last_error is not None and state.last_error.error_type == error_type


async def test_hanging_provider_is_a_timeout_recorded_once(
    provider: SimulatedProvider, spans: InMemorySpanExporter
) -> None:
    provider.script("*", Fault.hang())
    registry = HealthRegistry()
    # The monitor's deadline leaves room for creating the client (an SSL context) on the first run.
    monitor = HealthMonitor(registry=registry, jitter=0.0, timeout_s=1.0)
    monitor.add(OpenAIProbe("gpt-4o", base_url=provider.openai_base_url, timeout_s=0.05))
    monitor.add(AnthropicProbe("claude-haiku-4-5", base_url=provider.anthropic_base_url, timeout_s=30))
    await _run_once(monitor)
    provider.release_hangs()
    await monitor.aclose()
    # OpenAI: the client's own timeout ends the request first: the decorator records it.
    gpt = _state(registry, "openai", "gpt-4o")
    assert {k: v for k, v in gpt.outcome_totals.items() if v} == {("health_check", Outcome.FAILURE): 1}
    assert gpt.last_error is not None and gpt.last_error.error_type == "timeout"
    # Anthropic (client timeout longer than the monitor's): the monitor's deadline records the timeout;
    # the cancelled request's late "cancelled" outcome is dropped.
    claude = _state(registry, "anthropic", "claude-haiku-4-5")
    assert {k: v for k, v in claude.outcome_totals.items() if v} == {("health_check", Outcome.FAILURE): 1}
    assert claude.last_error is not None and claude.last_error.error_type == "timeout"
    assert monitor.stats.timeouts == 1


def test_thread_mode_against_simulated_provider_leaves_nothing_behind(
    provider: SimulatedProvider, spans: InMemorySpanExporter
) -> None:
    baseline = set(threading.enumerate())
    registry = HealthRegistry()
    monitor = HealthMonitor(registry=registry, jitter=0.0, interval_s=3600, timeout_s=5)
    probe = OpenAIProbe("gpt-4o", base_url=provider.openai_base_url)
    monitor.add(probe)
    with monitor:
        for _ in range(500):
            if registry.get(provider="openai", model="gpt-4o") is not None:
                break
            threading.Event().wait(0.01)
    assert _state(registry, "openai", "gpt-4o").last_outcome is Outcome.SUCCESS
    assert probe._client is None  # closed by stop()
    # The simulated provider's connection threads end on their own after the client closed (they belong
    # to the fixture, which checks them at stop); every other new thread would be ours.
    leftover = {
        t for t in set(threading.enumerate()) - baseline if not t.name.startswith("simulated-provider")
    }
    assert leftover == set()
