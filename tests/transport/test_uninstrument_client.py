"""uninstrument_client: the inverse of instrument_client. The client gets its own transports back (the
same objects, proxies and pool included) and its calls are no longer measured."""

from __future__ import annotations

import httpx
import httpx2
import openai
import pytest
from kit import Telemetry

import otel_model_health
from otel_model_health.instrument.transport import (
    AsyncModelHealthTransport,
    ModelHealthTransport,
    instrument_client,
    uninstrument_client,
)
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import SimulatedProvider

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def test_the_original_transports_come_back(monkeypatch: pytest.MonkeyPatch, telemetry: Telemetry) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = openai.DefaultHttpxClient()
    own = client._transport
    mounts = dict(client._mounts)
    assert any(t is not None for t in mounts.values()), "the env proxy makes a mount"

    instrument_client(client, **telemetry.options())
    assert isinstance(client._transport, ModelHealthTransport)
    assert uninstrument_client(client) is client
    assert client._transport is own
    assert client._mounts == mounts
    assert all(client._mounts[p] is t for p, t in mounts.items())
    # a second call changes nothing, and the client can be instrumented again
    uninstrument_client(client)
    assert client._transport is own
    instrument_client(client, **telemetry.options())
    assert client._transport.wrapped is own
    client.close()


@pytest.mark.integration
def test_calls_after_it_are_not_measured(sim: SimulatedProvider, telemetry: Telemetry) -> None:
    client = instrument_client(httpx2.Client(base_url=sim.openai_base_url), **telemetry.options())
    assert client.post("/chat/completions", json=CHAT).status_code == 200
    uninstrument_client(client)
    assert client.post("/chat/completions", json=CHAT).status_code == 200
    client.close()
    assert telemetry.recorder.verdicts == [(Outcome.SUCCESS, None)]
    assert len(telemetry.model_spans()) == 1


@pytest.mark.integration
def test_a_stream_started_before_still_ends_its_measurement(
    sim: SimulatedProvider, telemetry: Telemetry
) -> None:
    client = instrument_client(httpx2.Client(base_url=sim.openai_base_url), **telemetry.options())
    with client.stream("POST", "/chat/completions", json={**CHAT, "stream": True}) as response:
        uninstrument_client(client)
        body = response.read()
    client.close()
    assert b"[DONE]" in body
    assert telemetry.recorder.verdicts == [(Outcome.SUCCESS, None)]


async def test_async_clients_and_never_instrumented_ones(telemetry: Telemetry) -> None:
    client = httpx.AsyncClient()
    own = client._transport
    uninstrument_client(client)  # never instrumented: unchanged
    assert client._transport is own
    instrument_client(client, **telemetry.options())
    assert isinstance(client._transport, AsyncModelHealthTransport)
    uninstrument_client(client)
    assert client._transport is own
    await client.aclose()


def test_a_transport_given_to_the_client_is_unwrapped_too(telemetry: Telemetry) -> None:
    inner = httpx.HTTPTransport()
    client = httpx.Client(transport=ModelHealthTransport(inner, **telemetry.options()))
    uninstrument_client(client)
    assert client._transport is inner
    client.close()


def test_other_objects_are_rejected_and_the_root_package_exports_it() -> None:
    with pytest.raises(TypeError, match="uninstrument_client expects an httpx or httpx2 client"):
        uninstrument_client(object())
    assert otel_model_health.uninstrument_client is uninstrument_client
