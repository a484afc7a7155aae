"""Nothing of the request that happens to trigger a transition leaks into the model-health event."""

from __future__ import annotations

from collections.abc import Iterator

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
