"""Enforcement through the transport, with the real openai and anthropic SDKs against the simulated
provider: no request leaves while a breaker is OPEN and the SDK raises its own error at once (no retry
loop although ``max_retries=2``); in HALF_OPEN exactly ``half_open_trials`` of 50 concurrent callers reach
the provider; a 429's ``Retry-After`` refuses the model for that long, then lets calls through."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anthropic
import openai
import pytest
from kit import API_KEY, Telemetry, make_telemetry

from otel_model_health import BreakerConfig, HealthRegistry, instrument_client, monitor
from otel_model_health.enforcement import REFUSED_HEADER
from otel_model_health.health.types import BreakerState
from otel_model_health.testing import Fault, ManualClock, SimulatedProvider

pytestmark = pytest.mark.integration  # the simulated provider on 127.0.0.1

MODEL = "gpt-4o"
CLAUDE = "claude-sonnet-4-6"
CONFIG = BreakerConfig(open_wait_s=30.0, max_open_wait_s=60.0, jitter=0.0, half_open_trials=3)
MESSAGES: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
def breaker_config() -> BreakerConfig:
    return CONFIG


def _openai(sim: SimulatedProvider, t: Telemetry[Any], *, max_retries: int = 2) -> openai.OpenAI:
    http_client = instrument_client(openai.DefaultHttpxClient(), enforce=True, **t.options())
    return openai.OpenAI(
        base_url=sim.openai_base_url, api_key=API_KEY, max_retries=max_retries, http_client=http_client
    )


def _rejected_spans(t: Telemetry[Any]) -> list[Any]:
    return [s for s in t.model_spans() if (s.attributes or {}).get("model_health.outcome") == "rejected"]


def _assert_refused(error: openai.InternalServerError | anthropic.InternalServerError, reason: str) -> None:
    assert error.status_code == 503
    headers = error.response.headers
    assert headers["x-should-retry"] == "false" and headers[REFUSED_HEADER] == reason
    body: Any = error.body
    inner = body.get("error", body)  # openai keeps the inner error object, anthropic the whole body
    assert inner["type"] == "model_unavailable" and inner["code"] == reason


def test_openai_no_request_leaves_while_open(sim: SimulatedProvider, t: Telemetry[HealthRegistry]) -> None:
    sim.script(MODEL, Fault.status(503))  # down for good
    tripper = _openai(sim, t, max_retries=0)
    for _ in range(CONFIG.consecutive_failures):
        with pytest.raises(openai.InternalServerError):
            tripper.chat.completions.create(model=MODEL, messages=MESSAGES)
    state = t.recorder.get(provider="openai", model=MODEL, gateway="self_hosted")
    assert state is not None and state.breaker_state is BreakerState.OPEN
    sent = len(sim.requests_for(MODEL))

    client = _openai(sim, t, max_retries=2)
    elapsed: list[float] = []
    for _ in range(5):
        started = time.perf_counter()
        with pytest.raises(openai.InternalServerError) as raised:
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
        elapsed.append(time.perf_counter() - started)
        _assert_refused(raised.value, "breaker_open")
        assert raised.value.response.headers["retry-after"] == "30"
    print(f"refused openai calls took {[f'{e * 1e3:.2f} ms' for e in elapsed]} (max_retries=2)")
    assert len(sim.requests_for(MODEL)) == sent  # the provider's log: nothing left
    assert len(_rejected_spans(t)) == 5  # one attempt per call: the SDK ran no retry loop
    after = t.recorder.get(provider="openai", model=MODEL, gateway="self_hosted")
    assert after is not None and after.outcome_totals == state.outcome_totals  # refusals never recorded
    client.close()
    tripper.close()


def test_anthropic_no_request_leaves_while_open(sim: SimulatedProvider, t: Telemetry[HealthRegistry]) -> None:
    http_client = instrument_client(anthropic.DefaultHttpxClient(), enforce=True, **t.options())
    client = anthropic.Anthropic(
        base_url=sim.anthropic_base_url, api_key=API_KEY, max_retries=2, http_client=http_client
    )
    client.messages.create(model=CLAUDE, max_tokens=5, messages=MESSAGES)
    t.recorder.force_open(provider="anthropic", model=CLAUDE, gateway="self_hosted")
    elapsed: list[float] = []
    for _ in range(3):
        started = time.perf_counter()
        with pytest.raises(anthropic.InternalServerError) as raised:
            client.messages.create(model=CLAUDE, max_tokens=5, messages=MESSAGES)
        elapsed.append(time.perf_counter() - started)
        _assert_refused(raised.value, "breaker_open")
    # The first includes the SDK's one-time work for its first error response.
    print(f"refused anthropic calls took {[f'{e * 1e3:.2f} ms' for e in elapsed]} (max_retries=2)")
    assert len(sim.requests_for(CLAUDE)) == 1  # the call before the breaker opened
    assert len(_rejected_spans(t)) == 3  # one attempt per call: no retry loop
    client.close()


def test_async_openai_half_open_lets_exactly_the_trials_through(
    sim: SimulatedProvider, t: Telemetry[HealthRegistry], clock: ManualClock
) -> None:
    sim.script(MODEL, Fault.latency(0.5))  # the trials are still in flight while the others ask
    t.recorder.force_open(provider="openai", model=MODEL, gateway="self_hosted", duration_s=1.0)
    clock.advance(1.0)  # HALF_OPEN

    async def main() -> list[Any]:
        http_client = instrument_client(openai.DefaultAsyncHttpxClient(), enforce=True, **t.options())
        async with openai.AsyncOpenAI(
            base_url=sim.openai_base_url, api_key=API_KEY, max_retries=2, http_client=http_client
        ) as client:
            calls = [client.chat.completions.create(model=MODEL, messages=MESSAGES) for _ in range(50)]
            return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(main())
    refused = [r for r in results if isinstance(r, openai.InternalServerError)]
    answered = [r for r in results if not isinstance(r, BaseException)]
    assert len(sim.requests_for(MODEL)) == CONFIG.half_open_trials == len(answered)
    assert len(refused) == 50 - CONFIG.half_open_trials
    for error in refused:
        _assert_refused(error, "trials_busy")
        assert "retry-after" not in error.response.headers  # when a trial ends: no clock can say
    state = t.recorder.get(provider="openai", model=MODEL, gateway="self_hosted")
    assert state is not None and state.breaker_state is BreakerState.CLOSED  # every trial succeeded


def test_retry_after_refuses_for_two_seconds_on_the_registry_clock(
    sim: SimulatedProvider, t: Telemetry[HealthRegistry], clock: ManualClock
) -> None:
    sim.script(MODEL, Fault.rate_limit(retry_after=2.0), times=1)
    client = _openai(sim, t, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    _assert_refused(raised.value, "rate_limited")
    assert raised.value.response.headers["retry-after"] == "2"
    assert raised.value.response.headers["retry-after-ms"] == "2000"
    clock.advance(1.9)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    clock.advance(0.1)
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert [r.status for r in sim.requests_for(MODEL)] == [429, 200]
    client.close()


def test_retry_after_end_to_end_in_real_time(sim: SimulatedProvider) -> None:
    telemetry = make_telemetry(HealthRegistry(config=CONFIG))
    sim.script(MODEL, Fault.rate_limit(retry_after=2.0), times=1)
    client = _openai(sim, telemetry, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    limited_at = time.monotonic()
    refusals = 0
    deadline = limited_at + 10.0  # a hang guard, not a timing assertion
    while time.monotonic() < deadline:
        try:
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
            break
        except openai.InternalServerError as exc:
            _assert_refused(exc, "rate_limited")
            refusals += 1
            time.sleep(0.1)
    print(
        f"refused {refusals} calls; the first call let through came "
        f"{time.monotonic() - limited_at:.2f} s after the 429"
    )
    assert refusals >= 1
    assert [r.status for r in sim.requests_for(MODEL)] == [429, 200]
    client.close()
    telemetry.shutdown()


def test_a_refused_attempt_inside_a_decorated_call_is_not_the_models_failure(
    sim: SimulatedProvider, t: Telemetry[HealthRegistry]
) -> None:
    client = _openai(sim, t, max_retries=2)
    t.recorder.force_open(provider="openai", model=MODEL, gateway="self_hosted")

    @monitor(provider="openai", **t.options())  # passive itself, around an enforcing client
    def handler(model: str) -> Any:
        return client.chat.completions.create(model=model, messages=MESSAGES)

    with pytest.raises(openai.InternalServerError):
        handler(model=MODEL)
    assert sim.requests_for(MODEL) == []
    # The innermost outcome (the transport's refusal) wins: the decorator records no failure either.
    assert t.recorder.get(provider="openai", model=MODEL) is None
    outcomes = [(s.attributes or {}).get("model_health.outcome") for s in t.model_spans()]
    assert outcomes == ["rejected", "rejected"]  # the decorator's span says why its call failed
    client.close()
