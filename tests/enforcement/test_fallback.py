"""Fallback across three models during scripted outages: every call routed to a healthy model, and the
soonest retry time reported when all three are down (the example, run as a user runs it, and the helper
on a manual clock)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest
from kit import API_KEY, Telemetry

from otel_model_health import (
    BreakerConfig,
    HealthRegistry,
    ModelKey,
    NoModelAvailableError,
    acall_with_fallback,
    call_with_fallback,
    instrument_client,
)
from otel_model_health.testing import Fault, ManualClock, SimulatedProvider

pytestmark = pytest.mark.integration  # the simulated provider on 127.0.0.1

ROOT = Path(__file__).resolve().parents[2]
MESSAGES: Any = [{"role": "user", "content": "hi"}]
MODELS = ("gpt-4o", "gpt-4.1", "llama-3.1-8b")
KEYS = tuple(ModelKey(provider="openai", model=m, gateway="self_hosted") for m in MODELS)
CONFIG = BreakerConfig(consecutive_failures=2, open_wait_s=30.0, max_open_wait_s=60.0, jitter=0.0)


def test_the_fallback_example_routes_around_each_outage() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "fallback_gateway.py")],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "phase: all healthy: answered by {'gpt-4o': 4}",
        "phase: gpt-4o down: answered by {'claude-sonnet-4-6': 4}",
        "phase: claude overloaded too: answered by {'llama-3.1-8b': 4}",
        "phase: the local model down too: answered by {'none': 4}",
    ]
    assert lines[4] == (
        "no model available: gpt-4o=breaker_open, claude-sonnet-4-6=breaker_open, llama-3.1-8b=breaker_open"
    )
    retry_after = float(lines[5].removeprefix("retry after: ").removesuffix(" s"))
    assert 0 < retry_after <= 30.0  # gpt-4o opened first: its 30 s wait ends first
    # Each model got only the failing calls that opened its breaker (2) past its healthy ones.
    assert lines[6] == "requests: {'gpt-4o': 6, 'claude-sonnet-4-6': 6, 'llama-3.1-8b': 6}"


@pytest.fixture
def breaker_config() -> BreakerConfig:
    return CONFIG


def test_call_with_fallback_on_a_manual_clock(
    sim: SimulatedProvider, t: Telemetry[HealthRegistry], clock: ManualClock
) -> None:
    http_client = instrument_client(openai.DefaultHttpxClient(), enforce=True, **t.options())
    client = openai.OpenAI(
        base_url=sim.openai_base_url, api_key=API_KEY, max_retries=0, http_client=http_client
    )

    def ask(key: ModelKey) -> str:
        client.chat.completions.create(model=key.model, messages=MESSAGES)
        return key.model

    def route() -> str:
        return call_with_fallback(KEYS, ask, registry=t.recorder, fall_back_on=(openai.InternalServerError,))

    sim.script(MODELS[0], Fault.status(503))  # down: two failures open its breaker, then it is skipped
    assert [route() for _ in range(3)] == ["gpt-4.1"] * 3
    sim.script(MODELS[1], Fault.status(503))  # the second goes down too
    assert [route() for _ in range(3)] == ["llama-3.1-8b"] * 3
    sent = {m: [r.status for r in sim.requests_for(m)] for m in MODELS}
    assert sent == {
        "gpt-4o": [503, 503],
        "gpt-4.1": [200, 200, 200, 503, 503],
        "llama-3.1-8b": [200, 200, 200],
    }
    assert t.recorder.choose(KEYS).key == KEYS[2]

    t.recorder.force_open(provider="openai", model=MODELS[2], gateway="self_hosted", duration_s=5.0)
    clock.advance(1.0)
    with pytest.raises(NoModelAvailableError) as raised:
        route()
    assert raised.value.retry_after_s == 4.0  # the forced 5 s, one of them gone: the soonest of the three
    assert [r.reason for r in raised.value.choice.refusals] == ["breaker_open"] * 3
    assert raised.value.choice.retry_at == 1e9 + clock() + 4.0
    assert len(sim.requests) == 10  # nothing sent while all three were down
    clock.advance(4.0)
    assert route() == "llama-3.1-8b"  # HALF_OPEN: a trial goes through
    client.close()


def test_acall_with_fallback_moves_on_from_a_refusal(t: Telemetry[HealthRegistry]) -> None:
    t.recorder.force_open(provider="openai", model=MODELS[0], gateway="self_hosted")
    tried: list[str] = []

    async def ask(key: ModelKey) -> str:
        tried.append(key.model)
        return key.model

    assert asyncio.run(acall_with_fallback(KEYS, ask, registry=t.recorder)) == "gpt-4.1"
    assert tried == ["gpt-4.1"]
