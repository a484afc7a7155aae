"""Faults: Sentry unreachable, hanging, raising or absent never reach the caller; configuration errors do."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from bugsink_server import CapturingTransport, capturing_sentry, make_transition
from kit.blackholes import SilentServer

from otel_model_health._internal import internal_error_count
from otel_model_health.health.types import TransitionKind
from otel_model_health.sentry import SentryBridge, SentrySettings, init_sentry

K = TransitionKind


@pytest.fixture
def transport() -> Iterator[CapturingTransport]:
    with capturing_sentry() as captured:
        yield captured


@pytest.fixture
def bridge() -> Iterator[SentryBridge]:
    b = SentryBridge()
    yield b
    b.close()


def real_sentry(dsn: str) -> None:
    # The real HTTP transport; no default integrations so nothing else sends or patches.
    sentry_sdk.init(dsn=dsn, default_integrations=False, auto_enabling_integrations=False)


def close_real_sentry() -> None:
    sentry_sdk.get_client().close(timeout=0.5)
    sentry_sdk.get_global_scope().set_client(None)


# --- the Sentry client misbehaves --------------------------------------------------------------------


def test_raising_capture_event_is_swallowed_and_counted(
    bridge: SentryBridge, transport: CapturingTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("sentry exploded")

    monkeypatch.setattr(sentry_sdk, "capture_event", boom)
    errors_before = internal_error_count()
    bridge(make_transition(K.BREAKER_OPENED))  # must not raise
    bridge(make_transition(K.HALF_OPEN_FAILED))
    assert bridge.flush(5.0)
    assert bridge.dropped == 2
    assert bridge.captured == 0
    assert internal_error_count() == errors_before + 2
    assert transport.events == []


def test_no_sentry_client_counts_as_dropped(bridge: SentryBridge) -> None:
    assert not sentry_sdk.is_initialized()
    bridge(make_transition(K.BREAKER_OPENED))
    assert bridge.flush(5.0)
    assert bridge.dropped == 1


def test_full_queue_drops_and_counts(transport: CapturingTransport, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    entered = threading.Event()
    real_capture = sentry_sdk.capture_event

    def slow_capture(event: Any, *args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(10)
        return real_capture(event, *args, **kwargs)

    monkeypatch.setattr(sentry_sdk, "capture_event", slow_capture)
    bridge = SentryBridge(queue_size=2)
    try:
        bridge(make_transition(K.BREAKER_OPENED, model="m0"))
        assert entered.wait(5)  # the worker holds m0; the queue is empty again
        for i in range(1, 6):
            bridge(make_transition(K.BREAKER_OPENED, model=f"m{i}"))  # returns although the worker is stuck
        assert bridge.dropped == 3
        release.set()
        assert bridge.flush(5.0)
        assert [e["tags"]["model_id"] for e in transport.events] == ["m0", "m1", "m2"]
    finally:
        release.set()
        bridge.close()


def test_close_stops_the_worker_thread(transport: CapturingTransport) -> None:
    bridge = SentryBridge()
    bridge(make_transition(K.BREAKER_OPENED))
    worker = bridge._worker
    assert worker is not None and worker.is_alive()
    bridge.close()
    assert not worker.is_alive()
    assert len(transport.events) == 1  # close handed over what was queued


# --- the Sentry server misbehaves --------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens here any more: connections are refused


@pytest.mark.integration
def test_dsn_on_a_closed_port(bridge: SentryBridge) -> None:
    real_sentry(f"http://public@127.0.0.1:{closed_port()}/1")
    try:
        bridge(make_transition(K.BREAKER_OPENED))
        bridge(make_transition(K.PROVIDER_OUTAGE))
        bridge.flush(2.0)
        assert bridge.captured == 2  # the SDK accepted them; its own transport deals with the refusal
    finally:
        close_real_sentry()


@pytest.mark.integration
def test_dsn_on_a_server_that_never_answers(bridge: SentryBridge) -> None:
    server = SilentServer()
    real_sentry(f"http://public@127.0.0.1:{server.port}/1")
    try:
        bridge(make_transition(K.BREAKER_OPENED))  # returns: the send happens elsewhere
        assert not server.closed  # the server has not been let go ...
        assert server.first_accepted.wait(10)  # ... and the SDK's request is stuck in it
        bridge(make_transition(K.HALF_OPEN_FAILED))  # a second incident step still returns
        assert bridge.dropped == 0
    finally:
        server.close()  # unblock the SDK's transport before closing the client
        close_real_sentry()


@pytest.mark.integration
def test_instrumented_calls_return_while_sentry_hangs() -> None:
    """Decorated model calls drive a breaker open (two captured steps) while the DSN's server hangs:
    every call returns to its caller, with its own exception, before the server is let go."""
    from opentelemetry.sdk.trace import TracerProvider

    from otel_model_health.health.registry import HealthRegistry
    from otel_model_health.instrument.decorators import monitor

    class Unavailable(Exception):
        status_code = 503

    server = SilentServer()
    real_sentry(f"http://public@127.0.0.1:{server.port}/1")
    registry = HealthRegistry()
    bridge = SentryBridge().attach(registry)

    @monitor(provider="openai", registry=registry, tracer_provider=TracerProvider())
    def complete(model: str) -> str:
        raise Unavailable("upstream 503")

    try:
        for _ in range(6):  # first failure (captured), then the breaker opens (captured)
            with pytest.raises(Unavailable):
                complete("gpt-4o")
        state = registry.get(provider="openai", model="gpt-4o")
        assert state is not None and state.breaker_state.value == "open"
        assert server.first_accepted.wait(10)  # the SDK's send is stuck in the silent server ...
        assert not server.closed  # ... which has not been let go: the calls did not wait for it
        assert bridge.dropped == 0
    finally:
        server.close()
        bridge.close()
        close_real_sentry()


# --- fork --------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_worker_restarts_in_a_forked_child(bridge: SentryBridge, transport: CapturingTransport) -> None:
    bridge(make_transition(K.BREAKER_OPENED, model="parent"))
    assert bridge.flush(5.0)
    pid = os.fork()
    if pid == 0:  # child: exit code 0 only if the bridge works here too
        code = 1
        try:
            bridge(make_transition(K.BREAKER_OPENED, model="child"))
            ok = bridge.flush(5.0) and [e["tags"]["model_id"] for e in transport.events] == [
                "parent",
                "child",
            ]
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [e["tags"]["model_id"] for e in transport.events] == ["parent"]


# --- configuration -----------------------------------------------------------------------------------


def test_settings_from_env() -> None:
    env = {
        "SENTRY_ENABLED": "true",
        "SENTRY_DSN": "https://abc@o1.ingest.sentry.io/42",
        "SENTRY_ENVIRONMENT": "production",
        "SENTRY_TRACES_SAMPLE_RATE": "0.2",
    }
    settings = SentrySettings.from_env(env)
    assert settings == SentrySettings(True, "https://abc@o1.ingest.sentry.io/42", "production", 0.2)
    assert settings.active
    assert not SentrySettings.from_env({}).active
    assert not SentrySettings.from_env({"SENTRY_DSN": env["SENTRY_DSN"]}).active  # not enabled
    assert not SentrySettings.from_env({"SENTRY_ENABLED": "1"}).active  # no DSN


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SENTRY_ENABLED", "ture"),
        ("SENTRY_DSN", "not a dsn"),
        ("SENTRY_DSN", "https://o1.ingest.sentry.io/42"),  # no public key
        ("SENTRY_TRACES_SAMPLE_RATE", "20%"),
        ("SENTRY_TRACES_SAMPLE_RATE", "1.5"),
        ("SENTRY_TRACES_SAMPLE_RATE", "nan"),
    ],
)
def test_settings_errors_name_variable_and_value(name: str, value: str) -> None:
    with pytest.raises(ValueError) as info:
        SentrySettings.from_env({name: value})
    assert name in str(info.value)
    assert repr(value) in str(info.value)


INIT_SCRIPT = """
import sentry_sdk
from otel_model_health.sentry import SentrySettings, init_sentry
from otel_model_health.sentry.init import disabled_genai_integrations
settings = SentrySettings(enabled=True, dsn="http://public@127.0.0.1:1/1", environment="test")
assert init_sentry(settings, transport=lambda envelope: None)
client = sentry_sdk.get_client()
print(client.options["environment"], client.get_integration("openai"), client.get_integration("anthropic"),
      client.get_integration("logging") is not None,
      sorted(type(i).__name__ for i in disabled_genai_integrations()))
"""


@pytest.mark.integration
def test_init_sentry_disables_genai_integrations() -> None:
    # A fresh process: sentry-sdk installs integrations process-wide on the first init, and a later
    # init's disabled_integrations cannot undo that (other tests in this process have initialised it).
    result = subprocess.run(
        [sys.executable, "-c", INIT_SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "test", "None", "None", "True", "['AnthropicIntegration',", "'OpenAIIntegration']"
    ]  # fmt: skip


def test_init_sentry_leaves_an_existing_client_alone(transport: CapturingTransport) -> None:
    client = sentry_sdk.get_client()
    settings = SentrySettings(enabled=True, dsn="http://other@127.0.0.1:1/2")
    assert not init_sentry(settings)
    assert sentry_sdk.get_client() is client


def test_init_sentry_does_nothing_when_not_active() -> None:
    assert not init_sentry(SentrySettings())
    assert not sentry_sdk.is_initialized()
