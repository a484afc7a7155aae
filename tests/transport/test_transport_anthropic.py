"""The real anthropic SDK (httpx2) through instrument_client: results, its own span around our attempts,
one outcome per attempt, and the real HealthRegistry."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from kit import API_KEY, Telemetry, make_telemetry

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.instrument.transport import instrument_client
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration  # the simulated provider on 127.0.0.1

MODEL = "claude-sonnet-4-6"
MESSAGES: Any = [{"role": "user", "content": "Say hello"}]


def make_client(
    sim: SimulatedProvider, telemetry: Telemetry | None, *, sdk_spans: bool = False, **kwargs: Any
) -> anthropic.Anthropic:
    http_client = anthropic.DefaultHttpxClient()
    if telemetry is not None:
        instrument_client(http_client, **telemetry.options())
    kwargs.setdefault("max_retries", 0)
    # The SDK's own spans use the given tracer provider (no global needed) or none at all.
    otel: Any = {"tracer_provider": telemetry.tracer_provider} if (sdk_spans and telemetry) else False
    return anthropic.Anthropic(
        base_url=sim.anthropic_base_url,
        api_key=API_KEY,
        http_client=http_client,
        open_telemetry=otel,
        **kwargs,
    )


def _message_view(message: Any) -> Any:
    data = message.model_dump()
    data.pop("id")
    return data


def test_sync_results_identical(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    plain = make_client(sim, None)
    instrumented = make_client(sim, telemetry)
    kwargs: Any = {"model": MODEL, "max_tokens": 50, "messages": MESSAGES}
    assert _message_view(instrumented.messages.create(**kwargs)) == _message_view(
        plain.messages.create(**kwargs)
    )
    with instrumented.messages.stream(**kwargs) as stream:
        ours = list(stream.text_stream)
        ours_final = _message_view(stream.get_final_message())
    with plain.messages.stream(**kwargs) as stream:
        theirs = list(stream.text_stream)
        theirs_final = _message_view(stream.get_final_message())
    assert ours == theirs and len(ours) > 2
    assert ours_final == theirs_final
    spans = telemetry.model_spans()
    assert [s.name for s in spans] == [f"chat {MODEL}"] * 2
    for span in spans:
        attrs = dict(span.attributes or {})
        assert attrs["gen_ai.provider.name"] == "anthropic"
        assert attrs["gen_ai.response.finish_reasons"] == ("end_turn",)
        assert attrs["gen_ai.usage.output_tokens"] > 0
    assert telemetry.recorder.verdicts == [(Outcome.SUCCESS, None)] * 2


async def test_async_results_identical(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    def make(t: Telemetry | None) -> anthropic.AsyncAnthropic:
        http_client = anthropic.DefaultAsyncHttpxClient()
        if t is not None:
            instrument_client(http_client, **t.options())
        return anthropic.AsyncAnthropic(
            base_url=sim.anthropic_base_url, api_key=API_KEY, http_client=http_client, open_telemetry=False
        )

    plain, instrumented = make(None), make(telemetry)
    kwargs: Any = {"model": MODEL, "max_tokens": 50, "messages": MESSAGES}
    assert _message_view(await instrumented.messages.create(**kwargs)) == _message_view(
        await plain.messages.create(**kwargs)
    )
    ours = [e.type async for e in await instrumented.messages.create(**kwargs, stream=True)]
    theirs = [e.type async for e in await plain.messages.create(**kwargs, stream=True)]
    assert ours == theirs and ours[-1] == "message_stop"
    await plain.close()
    await instrumented.close()
    assert telemetry.recorder.verdicts == [(Outcome.SUCCESS, None)] * 2
    assert sum(p.count for p in telemetry.metrics()["gen_ai.client.operation.time_to_first_chunk"]) == 1


def test_sdk_span_wraps_one_span_per_attempt(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    sim.script(MODEL, Fault.status(529), times=1)
    client = make_client(sim, telemetry, sdk_spans=True, max_retries=1)
    client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    sdk_spans = [s for s in telemetry.spans() if s.instrumentation_scope.name != "otel_model_health"]
    ours = telemetry.model_spans()
    assert len(sdk_spans) == 1 and len(ours) == 2
    sdk_span = sdk_spans[0]
    for span in ours:
        assert span.parent is not None and span.parent.span_id == sdk_span.context.span_id
        assert span.context.trace_id == sdk_span.context.trace_id
    assert [dict(s.attributes or {}).get("error.type") for s in ours] == ["529", None]
    assert telemetry.recorder.verdicts == [(Outcome.FAILURE, "529"), (Outcome.SUCCESS, None)]


def test_with_real_registry_retry_is_one_failure_and_one_success(sim: SimulatedProvider) -> None:
    registry = HealthRegistry()
    telemetry = make_telemetry(registry)
    sim.script(MODEL, Fault.status(503), times=1)
    client = make_client(sim, telemetry, max_retries=1)
    client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    state = registry.get(provider="anthropic", model=MODEL, gateway="self_hosted")
    assert state is not None
    assert state.outcome_totals[("inference", Outcome.FAILURE)] == 1
    assert state.outcome_totals[("inference", Outcome.SUCCESS)] == 1
    assert state.last_error is not None and state.last_error.status_code == 503


def test_rate_limit_with_real_registry(sim: SimulatedProvider) -> None:
    registry = HealthRegistry()
    telemetry = make_telemetry(registry)
    sim.script(MODEL, Fault.rate_limit(30.0), times=1)
    with pytest.raises(anthropic.RateLimitError):
        make_client(sim, telemetry).messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    state = registry.get(provider="anthropic", model=MODEL, gateway="self_hosted")
    assert state is not None and state.rate_limited_until is not None
    assert not registry.is_available(provider="anthropic", model=MODEL, gateway="self_hosted")


def test_overloaded_error_event(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    sim.script(MODEL, Fault.stream_error(after_chunks=1), times=1)
    client = make_client(sim, telemetry)
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(model=MODEL, max_tokens=10, messages=MESSAGES) as stream,
    ):
        list(stream.text_stream)
    assert telemetry.recorder.verdicts == [(Outcome.FAILURE, "overloaded_error")]


def test_stream_without_message_stop(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    sim.script(MODEL, Fault.truncate(after_chunks=2), times=1)
    client = make_client(sim, telemetry)
    events = list(client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES, stream=True))
    assert events and events[-1].type != "message_stop"
    assert telemetry.recorder.verdicts == [(Outcome.FAILURE, "incomplete_stream")]


def test_one_megabyte_prompt_model_last(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    prompt = "y" * 1_000_000
    client = make_client(sim, telemetry)
    client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": prompt}])
    body = sim.requests[-1].body
    assert body is not None and list(json.loads(json.dumps(body)))[-1] == "model"  # anthropic writes it last
    attrs = dict(telemetry.model_spans()[0].attributes or {})
    assert attrs["gen_ai.request.model"] == MODEL
    assert telemetry.recorder.verdicts == [(Outcome.SUCCESS, None)]
