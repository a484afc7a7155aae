"""Refused calls are not incidents: with enforcement on, the calls refused while a breaker is OPEN add no
Sentry event (the bridge hears only transitions, and a refusal causes none)."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from bugsink_server import capturing_sentry
from opentelemetry.sdk.trace import TracerProvider

from otel_model_health import HealthRegistry, instrument_client
from otel_model_health.sentry import SentryBridge
from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration  # the simulated provider on 127.0.0.1

MESSAGES: Any = [{"role": "user", "content": "hi"}]


def test_refusals_never_reach_sentry(sim: SimulatedProvider) -> None:
    with capturing_sentry() as sentry:
        registry = HealthRegistry()
        bridge = SentryBridge().attach(registry)
        http_client = instrument_client(
            openai.DefaultHttpxClient(), enforce=True, registry=registry, tracer_provider=TracerProvider()
        )
        client = openai.OpenAI(
            base_url=sim.openai_base_url, api_key="sk-test", max_retries=0, http_client=http_client
        )
        sim.script("gpt-4o", Fault.status(503))
        for _ in range(5):  # the failures that open the breaker: an incident, reported
            with pytest.raises(openai.InternalServerError):
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert bridge.flush(5.0)
        reported = [event["tags"]["transition"] for event in sentry.events]
        assert reported == ["first_failure", "breaker_opened"]

        for _ in range(20):  # refused: no request, no transition, no event
            with pytest.raises(openai.InternalServerError):
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert bridge.flush(5.0)
        assert len(sim.requests_for("gpt-4o")) == 5
        assert [event["tags"]["transition"] for event in sentry.events] == reported
        bridge.close()
        client.close()
