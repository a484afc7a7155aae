"""Nothing of the request that happens to trigger a transition leaks into the model-health event."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from bugsink_server import CapturingTransport, capturing_sentry, make_transition

from otel_model_health.health.types import TransitionKind
from otel_model_health.sentry import SentryBridge
from otel_model_health.sentry.bridge import _Job

EMAIL = "alice@example.com"


@pytest.fixture
def transport() -> Iterator[CapturingTransport]:
    with capturing_sentry() as captured:
        yield captured


@pytest.fixture
def bridge() -> Iterator[SentryBridge]:
    b = SentryBridge()
    yield b
    b.close()


def fill_request_scope() -> None:
    """What a web framework integration and the app put on the scopes of one request."""
    sentry_sdk.set_user({"id": "42", "email": EMAIL, "ip_address": "203.0.113.7"})
    sentry_sdk.set_tag("request_id", "req-123")
    sentry_sdk.set_tag("provider", "hijacked")  # same key as one of ours: ours must win
    sentry_sdk.set_context("request", {"url": f"https://app.example/users/{EMAIL}"})
    sentry_sdk.set_extra("cart", {"owner": EMAIL})
    sentry_sdk.add_breadcrumb(category="auth", message=f"login {EMAIL}")
    sentry_sdk.get_current_scope().set_tag("current_only", "yes")
    sentry_sdk.get_current_scope().add_breadcrumb(message="current-scope crumb")
    sentry_sdk.get_current_scope().fingerprint = ["request-fingerprint"]
    sentry_sdk.get_current_scope().set_level("debug")


def assert_clean(event: dict[str, object]) -> None:
    assert EMAIL not in repr(event)
    assert "user" not in event
    assert "cart" not in (event.get("extra") or {})  # type: ignore[operator]
    assert not (event.get("breadcrumbs") or {}).get("values")  # type: ignore[attr-defined]
    tags = event["tags"]
    assert isinstance(tags, dict)
    assert "request_id" not in tags and "current_only" not in tags
    assert tags["provider"] == "openai"
    contexts = event["contexts"]
    assert isinstance(contexts, dict)
    assert "request" not in contexts
    assert event["fingerprint"] == ["model-health", "openai", "openrouter", "gpt-4o"]
    assert event["level"] == "error"


def test_listener_called_inside_a_pii_request_scope(
    bridge: SentryBridge, transport: CapturingTransport
) -> None:
    with sentry_sdk.isolation_scope():
        fill_request_scope()
        bridge(make_transition(TransitionKind.BREAKER_OPENED))
        assert bridge.flush(5.0)
    (event,) = transport.events
    assert_clean(event)


def test_capture_step_clears_scopes_even_in_the_request_thread(
    bridge: SentryBridge, transport: CapturingTransport
) -> None:
    # The worker thread starts with an empty context, which hides PII on its own; running the capture
    # step in the PII-laden thread shows the cleared scopes are what keeps the event clean.
    with sentry_sdk.isolation_scope() as request_scope:
        fill_request_scope()
        bridge._capture(_Job(make_transition(TransitionKind.BREAKER_OPENED), "error"))
        # ... and the request's own scopes are untouched by the clearing.
        assert request_scope._user is not None and request_scope._user["email"] == EMAIL
        assert sentry_sdk.get_current_scope()._tags.get("current_only") == "yes"
    (event,) = transport.events
    assert_clean(event)


def test_a_pii_control_event_does_carry_the_request_data(transport: CapturingTransport) -> None:
    # Guards the test itself: an ordinary capture in the same scope does pick up the user and tags.
    with sentry_sdk.isolation_scope():
        fill_request_scope()
        sentry_sdk.capture_message("control")
    (event,) = transport.events
    assert event["user"]["email"] == EMAIL
    assert event["tags"]["request_id"] == "req-123"
    assert event["breadcrumbs"]["values"]


def test_sdk_defaults_leave_no_argv_modules_or_request_data(
    bridge: SentryBridge, transport: CapturingTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sentry-sdk's default integrations (on in this client) put sys.argv under `extra` and the installed
    # modules on every event; a framework integration's processor on the request's isolation scope adds
    # the request. None of it may reach a model-health event: a secret on the command line would.
    secret = "--api-key=sk-proj-ARGVSECRET0123456789"
    monkeypatch.setattr(sys, "argv", [sys.argv[0], secret])  # the SDK keeps the first 10 items

    def add_request(event: dict[str, Any], _hint: object) -> dict[str, Any]:
        event["request"] = {"url": f"https://app.example/users/{EMAIL}"}
        event.setdefault("contexts", {})["response"] = {"status_code": 500}
        return event

    with sentry_sdk.isolation_scope() as request_scope:
        request_scope.add_event_processor(add_request)
        bridge._capture(_Job(make_transition(TransitionKind.BREAKER_OPENED), "error"))
        sentry_sdk.capture_message("control")  # an ordinary event of the app in the same scope
    ours, control = transport.events
    serialized = b"".join(envelope.serialize() for envelope in transport.envelopes)
    assert serialized.count(b"ARGVSECRET") == 1  # the control event's, not ours
    assert "ARGVSECRET" in repr(control) and "modules" in control and "request" in control
    assert "extra" not in ours and "modules" not in ours and "request" not in ours
    assert "response" not in ours["contexts"] and {"model_health", "trace"} <= set(ours["contexts"])
    assert ours["message"].startswith("Model unavailable: openai/gpt-4o")
