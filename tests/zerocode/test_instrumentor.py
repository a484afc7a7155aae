"""ModelHealthInstrumentor in this process: which clients it wraps, what uninstrument() restores, the
/health server of MODEL_HEALTH_HTTP_PORT, and the SDK-named providers on OpenAI-compatible paths."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import httpx
import httpx2
import pytest
from kit import ListRecorder, Telemetry, make_telemetry

import otel_model_health as omh
from otel_model_health.asgi import health_asgi_app
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health_server import HealthServer
from otel_model_health.instrument.transport import autowrap, instrument_client
from otel_model_health.instrument.transport.requests import match_endpoint, sdk_provider
from otel_model_health.instrumentor import ModelHealthInstrumentor
from otel_model_health.option_values import parse_breaker, parse_host, parse_port
from otel_model_health.settings import ConfigurationError
from otel_model_health.testing import SimulatedProvider

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def telemetry() -> Iterator[Telemetry[ListRecorder]]:
    t = make_telemetry(ListRecorder())
    yield t
    t.shutdown()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.integration
def test_instrument_measures_new_clients_and_uninstrument_restores(
    sim: SimulatedProvider, telemetry: Telemetry[ListRecorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_HEALTH_HTTP_PORT", "0")
    inits = (
        httpx.Client.__init__,
        httpx.AsyncClient.__init__,
        httpx2.Client.__init__,
        httpx2.AsyncClient.__init__,
    )
    before = httpx2.Client()
    instrumentor = ModelHealthInstrumentor()
    assert omh.current() is None
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    try:
        handle = omh.current()
        assert handle is not None and handle.tracer_provider is telemetry.tracer_provider
        assert all(
            autowrap.is_patched(c)
            for c in (httpx.Client, httpx.AsyncClient, httpx2.Client, httpx2.AsyncClient)
        )
        new_httpx, new_httpx2 = httpx.Client(), httpx2.Client(mounts={"http://x": httpx2.HTTPTransport()})
        explicit = instrument_client(httpx2.Client(), gateway="mine")
        assert type(new_httpx._transport).__name__ == "ModelHealthTransport"
        assert all(type(t).__name__ == "ModelHealthTransport" for t in new_httpx2._mounts.values())
        assert type(before._transport).__name__ == "HTTPTransport"  # created before: not ours to change
        assert new_httpx.post(sim.openai_base_url + "/chat/completions", json=BODY).status_code == 200
        assert new_httpx.get(sim.openai_base_url + "/models").status_code == 200  # not a model call
        assert before.post(sim.openai_base_url + "/chat/completions", json=BODY).status_code == 200
        spans = telemetry.model_spans()
        assert [s.attributes["gen_ai.request.model"] for s in spans] == ["gpt-4o"]  # type: ignore[index]
        state = handle.registry.get(provider="openai", model="gpt-4o", gateway="self_hosted")
        assert state is not None and state.calls_in_window == 1
        health_url = handle.health_server.url
        status, body = _get(health_url + "/health/models")
        assert status == 200 and [m["model"] for m in json.loads(body)["models"]] == ["gpt-4o"]
    finally:
        instrumentor.uninstrument()
    assert (
        httpx.Client.__init__,
        httpx.AsyncClient.__init__,
        httpx2.Client.__init__,
        httpx2.AsyncClient.__init__,
    ) == inits
    assert type(new_httpx._transport).__name__ == "HTTPTransport"  # the automatic wrapper is taken off
    assert type(explicit._transport).__name__ == "ModelHealthTransport"  # an explicit one stays
    assert type(httpx.Client()._transport).__name__ == "HTTPTransport"
    assert omh.current() is None  # the handle instrument() created is shut down, with its /health server
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(health_url.rsplit(":", 1)[1])), timeout=1).close()
    for client in (before, new_httpx, new_httpx2, explicit):
        client.close()


def test_openai_compatible_sdks_name_their_provider() -> None:
    chat = match_endpoint("POST", "/openai/v1/chat/completions")
    messages = match_endpoint("POST", "/v1/messages")
    assert chat is not None and messages is not None
    assert sdk_provider(chat, httpx.Headers({"user-agent": "Groq/Python 1.7.0"})) == "groq"
    assert sdk_provider(chat, httpx.Headers({"user-agent": "mistral-client-python/3.7.0"})) == "mistral_ai"
    assert sdk_provider(chat, httpx.Headers({"user-agent": "OpenAI/Python 3.57.0"})) == "openai"
    assert sdk_provider(chat, httpx.Headers({})) == "openai"
    # A path that says its provider keeps it, whatever the SDK.
    assert sdk_provider(messages, httpx.Headers({"user-agent": "Groq/Python 1.7.0"})) == "anthropic"


@pytest.mark.parametrize(
    ("parse", "raw", "message"),
    [
        (parse_port, "http", "MODEL_HEALTH_HTTP_PORT must be a port number"),
        (parse_port, "70000", "MODEL_HEALTH_HTTP_PORT must be a port number"),
        (parse_host, "http://0.0.0.0", "MODEL_HEALTH_HTTP_HOST must be a host name"),
        (parse_host, "127.0.0.1:80", "MODEL_HEALTH_HTTP_HOST must be a host name"),
        (parse_breaker, "open_wait=5", "no breaker setting 'open_wait'"),
        (parse_breaker, "minimum_calls=many", "minimum_calls must be an integer"),
        (parse_breaker, "minimum_calls=50", "minimum_calls"),
    ],
)
def test_bad_zero_code_values_are_named(parse: object, raw: str, message: str) -> None:
    variable = message.split(maxsplit=1)[0] if message.startswith("MODEL_") else "MODEL_HEALTH_BREAKER"
    with pytest.raises(ConfigurationError, match=message) as info:
        parse(variable, raw)  # type: ignore[operator]
    assert variable in str(info.value)


def test_good_zero_code_values() -> None:
    assert parse_port("P", " 8321 ") == 8321 and parse_port("P", "") is None
    assert parse_host("H", "::1") == "::1" and parse_host("H", "0.0.0.0") == "0.0.0.0"
    breaker = parse_breaker("B", "open_wait_s=10,minimum_calls=3,failure_rate_threshold=0.25")
    assert breaker is not None and (breaker.open_wait_s, breaker.minimum_calls) == (10.0, 3)
    assert breaker.failure_rate_threshold == 0.25


@pytest.mark.integration
def test_health_server_serves_the_asgi_app() -> None:
    registry = HealthRegistry()
    registry.record(omh.ModelKey(provider="openai", model="gpt-4o"), omh.Outcome.SUCCESS, latency_s=0.1)
    server = HealthServer(health_asgi_app(registry), "127.0.0.1", 0).start()
    try:
        status, body = _get(server.url + "/health")
        assert status == 200 and json.loads(body)["status"] == "healthy"
        status, body = _get(server.url + "/health/models?provider=openai")
        assert [m["model"] for m in json.loads(body)["models"]] == ["gpt-4o"]
        assert _get(server.url + "/nope")[0] == 404
        request = urllib.request.Request(server.url + "/health", method="HEAD")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200 and response.read() == b""
        port = int(server.url.rsplit(":", 1)[1])
        with pytest.raises(OSError, match="MODEL_HEALTH_HTTP_PORT"):
            HealthServer(health_asgi_app(registry), "127.0.0.1", port).start()
    finally:
        server.stop()
    server.stop()  # idempotent


def test_instrument_from_code_raises_on_a_bad_value_and_changes_nothing(
    telemetry: Telemetry[ListRecorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_HEALTH_BREAKER", "minimum_calls=lots")
    instrumentor = ModelHealthInstrumentor()
    with pytest.raises(ConfigurationError, match="MODEL_HEALTH_BREAKER"):
        instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
    assert not instrumentor.is_instrumented_by_opentelemetry
    assert not autowrap.is_patched(httpx2.Client) and omh.current() is None
