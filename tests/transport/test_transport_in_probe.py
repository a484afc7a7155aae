"""A probe built on an instrumented client: the transport's attempts are health checks, counted once."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from kit import Telemetry

from otel_model_health.instrument.decorators import monitor, probe
from otel_model_health.instrument.transport import instrument_client
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration  # the simulated provider on 127.0.0.1

CHAT: Any = {"model": "gpt-4o", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}


def test_attempts_inside_a_probe_are_health_checks(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    client = instrument_client(httpx2.Client(base_url=sim.openai_base_url), **telemetry.options())
    sim.script("gpt-4o", Fault.status(503), times=1)

    @probe(provider="openai", model="gpt-4o", **telemetry.options())
    def check() -> int:
        return client.post("/chat/completions", json=CHAT).status_code

    @monitor(provider="openai", model="gpt-4o", **telemetry.options())
    def infer() -> int:
        return client.post("/chat/completions", json=CHAT).status_code

    assert check() == 503
    assert check() == 200
    assert infer() == 200
    client.close()

    operations = [(r.outcome, r.kwargs["operation"]) for r in telemetry.recorder.records]
    # One outcome per HTTP attempt (innermost wins), each marked with the enclosing call's operation.
    assert operations == [
        (Outcome.FAILURE, "health_check"),
        (Outcome.SUCCESS, "health_check"),
        (Outcome.SUCCESS, "inference"),
    ]
    attempt_spans = [s for s in telemetry.model_spans() if s.attributes and "server.address" in s.attributes]
    assert [s.attributes["model_health.operation"] for s in attempt_spans if s.attributes] == [
        "health_check",
        "health_check",
        "inference",
    ]
