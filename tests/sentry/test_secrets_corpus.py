"""The secrets corpus: every key shape we scrub, and a distinctive prompt, sent every way a call can carry
them, and looked for in everything that leaves the process.

Ways in: request headers, URLs (query and user-info), provider error bodies that echo them (the simulated
provider on 127.0.0.1: JSON errors, a stream error event, Gemini), a refused connection, and exception
messages of decorated calls (a function's own exception, the openai SDK's). Ways out: every exported span
(attributes, events, status), every metric, our log records, every Sentry envelope (in-memory transport),
``registry.snapshot()``, the transitions and the ``/health`` answers. Content capture is off, so the prompt
must be nowhere either. Positive checks make sure the echoes did travel (scrubbed) and were not simply lost.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import openai
import pytest
from bugsink_server import CapturingTransport, capturing_sentry
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_model_health import defaults
from otel_model_health.asgi import health_asgi_app
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import BreakerConfig, HealthTransition
from otel_model_health.instrument.decorators import monitor
from otel_model_health.instrument.error_text import CONTENT_REMOVED
from otel_model_health.instrument.transport import ModelHealthTransport
from otel_model_health.redact import REDACTED
from otel_model_health.sentry import SentryBridge
from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration

S = {
    "openai": "sk-proj-Corpus0penAI0123456789abcd",
    "anthropic": "sk-ant-api03-Corpus0123456789abcdef",
    "openrouter": "sk-or-v1-c0ffee0123456789abcdef0123456789",
    "google": "AIzaSyCorpus0123456789abcdefghijklm",
    "groq": "gsk_Corpus0123456789abcdefgh",
    "xai": "xai-Corpus0123456789abcdefgh",
    "azure": "c0ffee00deadbeef0123456789abcdef",  # 32 hex
    "mistral": "aBcD1234eFgH5678iJkL9012mNoP3456",  # 32 letters and digits
    "basic": "Y29ycHVzdXNlcjpjb3JwdXNwYXNz",  # base64("corpususer:corpuspass")
    "basic_password": "corpuspass",
    "url_password": "Hunter2CorpusPw",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjb3JwdXMifQ.c2lnbmF0dXJlY29ycHVz",
    "json_api_key": "jsonApiKeyValue42",
    "json_secret": "jsonSecretValue42",
    "json_token": "jsonTokenValue42",
    "json_password": "jsonPasswordValue42",
    "json_access_token": "jsonAccessTokenValue42",
}
PROMPT = "Corpus prompt: the purple giraffe recites 8391 limericks at dawn"
PROMPT_PIECES = ("purple giraffe", "8391 limericks", "Corpus prompt")

# What a provider (or a proxy in front of it) echoes back: each part fits the 256 characters of a provider
# message that the transport reads, and quotes the prompt as OpenAI's schema errors do.
ECHOES = [
    f"Incorrect API key provided: {S['openai']}. '{PROMPT}' is not of type 'array'",
    f"headers {{'x-api-key': '{S['anthropic']}', 'api-key': '{S['azure']}'}} for '{PROMPT}'",
    f"Authorization: Basic {S['basic']}; Bearer {S['openrouter']}; jwt {S['jwt']}",
    f"bad url https://corpususer:{S['url_password']}@proxy.example:8080/v1?key={S['google']}&x=1",
    f"groq {S['groq']} xai {S['xai']}; your API key {S['mistral']} and {S['azure']} are invalid",
    f'{{"api_key": "{S["json_api_key"]}", "secret": "{S["json_secret"]}", "token": "{S["json_token"]}"}}',
    f'{{"password": "{S["json_password"]}", "access_token": "{S["json_access_token"]}"}} input {PROMPT}',
]
EVERYTHING = " | ".join(ECHOES)
HEADERS = {
    "Authorization": f"Bearer {S['openai']}",
    "api-key": S["azure"],
    "x-api-key": S["anthropic"],
    "x-goog-api-key": S["google"],
}
QUERY = f"key={S['google']}&api-key={S['azure']}&token={S['json_token']}"


class Sinks:
    """Everything that leaves the process, collected as text."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.registry = HealthRegistry(config=BreakerConfig(jitter=0.0))
        self.transitions: list[HealthTransition] = []
        self.registry.subscribe(self.transitions.append)

    def options(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "tracer_provider": self.tracer_provider,
            "meter_provider": self.meter_provider,
        }


@pytest.fixture
def sinks() -> Iterator[Sinks]:
    s = Sinks()
    yield s
    s.tracer_provider.shutdown()
    s.meter_provider.shutdown()


@pytest.fixture
def sentry() -> Iterator[CapturingTransport]:
    with capturing_sentry() as transport:
        yield transport


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def send_through_the_transport(sim: SimulatedProvider, sinks: Sinks) -> None:
    base = f"http://corpususer:{S['url_password']}@127.0.0.1:{sim.port}"
    body = {"messages": [{"role": "user", "content": PROMPT}], "metadata": {"api_key": S["json_api_key"]}}
    with httpx2.Client(transport=ModelHealthTransport(httpx2.HTTPTransport(), **sinks.options())) as client:
        for i, echo in enumerate(ECHOES):
            model = f"corpus-{i}"
            sim.script(model, Fault.status(503, message=echo))
            for _ in range(6):  # enough to open the breaker: transitions and Sentry events
                response = client.post(
                    f"{base}/v1/chat/completions?{QUERY}", json={"model": model, **body}, headers=HEADERS
                )
                assert response.status_code == 503 and response.json()["error"]["message"] == echo
        # A 400 quoting the prompt, a stream error event, Gemini with the key in the URL.
        sim.script("corpus-400", Fault.status(400, message=ECHOES[0]))
        client.post(
            f"{base}/v1/chat/completions?{QUERY}", json={"model": "corpus-400", **body}, headers=HEADERS
        )
        sim.script("corpus-stream", Fault.stream_error(after_chunks=1, message=ECHOES[1]))
        with client.stream(
            "POST", f"{base}/v1/chat/completions", json={"model": "corpus-stream", "stream": True, **body}
        ) as stream:
            assert ECHOES[1][:40] in "".join(stream.iter_text())
        sim.script("corpus-gemini", Fault.status(503, message=ECHOES[3]))
        gemini = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
        client.post(f"{base}/v1beta/models/corpus-gemini:generateContent?key={S['google']}", json=gemini)
        # A refused connection, secrets in the URL.
        with pytest.raises(httpx2.ConnectError):
            client.post(f"http://u:{S['url_password']}@127.0.0.1:{closed_port()}/v1/chat/completions?{QUERY}",
                        json={"model": "corpus-refused", **body})  # fmt: skip


def call_through_decorators(sim: SimulatedProvider, sinks: Sinks) -> None:
    @monitor(provider="openai", **sinks.options())
    def ask(model: str, messages: Any) -> None:
        raise RuntimeError(f"upstream said: {EVERYTHING}")

    with pytest.raises(RuntimeError):
        ask(model="corpus-decorated", messages=[{"role": "user", "content": PROMPT}])

    # The openai SDK's own exception ("Error code: 400 - <message>"), the client's key in its headers.
    sim.script("corpus-sdk", Fault.status(400, message=ECHOES[0]))
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key=S["openai"], max_retries=0)
    create = monitor(client.chat.completions.create, **sinks.options())
    with pytest.raises(openai.BadRequestError) as raised:
        create(model="corpus-sdk", messages=[{"role": "user", "content": PROMPT}])
    assert PROMPT in str(raised.value)  # the caller's exception is untouched


async def health_answers(sinks: Sinks) -> str:
    app = health_asgi_app(sinks.registry)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        answers = [await client.get(path) for path in ("/health", "/health/models")]
    assert all(answer.status_code == 200 for answer in answers)
    return "\n".join(answer.text for answer in answers)


async def test_no_secret_and_no_prompt_leaves_the_process(
    sim: SimulatedProvider,
    sinks: Sinks,
    sentry: CapturingTransport,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(defaults, "_capture_content", False)
    caplog.set_level(logging.DEBUG, logger="otel_model_health")
    bridge = SentryBridge(tracer_provider=sinks.tracer_provider).attach(sinks.registry)
    try:
        send_through_the_transport(sim, sinks)
        call_through_decorators(sim, sinks)
        assert bridge.flush(10.0)
    finally:
        bridge.close()

    spans = sinks.exporter.get_finished_spans()
    metrics = sinks.reader.get_metrics_data()
    assert metrics is not None
    outputs = {
        "spans": "\n".join(span.to_json() for span in spans),
        "metrics": metrics.to_json(),
        # The simulated provider (otel_model_health.testing) is the remote peer here: its access log is the
        # provider's, not ours.
        "logs": "\n".join(
            caplog.handler.format(record) + repr(record.__dict__)
            for record in caplog.records
            if not record.name.startswith("otel_model_health.testing")
        ),
        "sentry": b"".join(envelope.serialize() for envelope in sentry.envelopes).decode(),
        "snapshot": repr(sinks.registry.snapshot()),
        "transitions": repr(sinks.transitions),
        "health": await health_answers(sinks),
    }
    leaks = {
        (where, name)
        for where, text in outputs.items()
        for name, secret in [*S.items(), *((piece, piece) for piece in PROMPT_PIECES)]
        if secret in text
    }
    assert not leaks

    # The echoes did travel, scrubbed: the messages are there, with markers where secrets and prompt were.
    statuses = [span.status.description or "" for span in spans]
    assert any(s.startswith(f"Incorrect API key provided: {REDACTED}. '{CONTENT_REMOVED}'") for s in statuses)
    assert any("'api-key': '[REDACTED]'" in s for s in statuses)
    assert any(f"https://{REDACTED}@proxy.example" in s for s in statuses)
    assert any(s.startswith("RuntimeError: upstream said: Incorrect API key") for s in statuses)
    assert any(s.startswith("BadRequestError: invalid_request_error: Incorrect API key") for s in statuses)
    assert len(spans) > len(ECHOES) * 6
    events = sentry.events
    assert any(event.get("message", "").startswith("Provider outage: openai") for event in events)
    messages = {event["contexts"]["model_health"].get("error_message") for event in events}
    assert f"Incorrect API key provided: {REDACTED}. '{CONTENT_REMOVED}' is not of type 'array'" in messages
    assert "corpus-0" in outputs["health"] and CONTENT_REMOVED in outputs["snapshot"]
    # ... and the secrets and the prompt were really sent.
    sent = [record for record in sim.requests if record.model == "corpus-0"]
    assert sent and sent[0].body["messages"][0]["content"] == PROMPT
    assert f"key={S['google']}" in sent[0].query
