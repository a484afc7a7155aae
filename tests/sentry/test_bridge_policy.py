"""Which transitions the bridge captures, at which level, and how it deduplicates (DESIGN.md policy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bugsink_server import CapturingTransport, capturing_sentry, make_transition

from otel_model_health.health.types import BreakerState, HealthTransition, TransitionKind
from otel_model_health.sentry import SentryBridge
from otel_model_health.testing import ManualClock

K = TransitionKind


@pytest.fixture
def transport() -> Iterator[CapturingTransport]:
    with capturing_sentry() as captured:
        yield captured


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def bridge(clock: ManualClock) -> Iterator[SentryBridge]:
    b = SentryBridge(clock=clock, critical_models=("claude-opus-4", "openai/gpt-4.1"))
    yield b
    b.close()


def fire(bridge: SentryBridge, transport: CapturingTransport, *transitions: HealthTransition) -> list[str]:
    """Deliver transitions; return the `transition` tag of each captured event, in order."""
    before = len(transport.events)
    for t in transitions:
        bridge(t)
    assert bridge.flush(5.0)
    return [event["tags"]["transition"] for event in transport.events[before:]]


def levels(transport: CapturingTransport) -> list[str]:
    return [event["level"] for event in transport.events]


@pytest.mark.parametrize(
    ("kind", "level"),
    [
        (K.FIRST_FAILURE, "warning"),
        (K.BREAKER_OPENED, "error"),
        (K.HALF_OPEN_FAILED, "error"),
        (K.PROVIDER_OUTAGE, "fatal"),
    ],
)
def test_captured_kinds_and_levels(
    bridge: SentryBridge, transport: CapturingTransport, kind: TransitionKind, level: str
) -> None:
    assert fire(bridge, transport, make_transition(kind)) == [str(kind)]
    assert levels(transport) == [level]
    assert bridge.captured == 1
    assert bridge.dropped == 0


@pytest.mark.parametrize("kind", [K.HALF_OPEN, K.RECOVERED, K.PROVIDER_RECOVERED])
def test_not_captured_kinds(
    bridge: SentryBridge, transport: CapturingTransport, kind: TransitionKind
) -> None:
    assert fire(bridge, transport, make_transition(kind)) == []
    assert bridge.captured == 0


@pytest.mark.parametrize(
    ("model", "provider", "kind", "level"),
    [
        ("claude-opus-4", "anthropic", K.FIRST_FAILURE, "error"),  # matched by model id
        ("claude-opus-4", "anthropic", K.BREAKER_OPENED, "fatal"),
        ("gpt-4.1", "openai", K.HALF_OPEN_FAILED, "fatal"),  # matched by provider/model
        ("gpt-4.1", "openai", K.PROVIDER_OUTAGE, "fatal"),  # fatal stays fatal
        ("gpt-4.1", "azure.ai.openai", K.BREAKER_OPENED, "error"),  # other provider: not critical
    ],
)
def test_critical_models_one_level_higher(
    bridge: SentryBridge,
    transport: CapturingTransport,
    model: str,
    provider: str,
    kind: TransitionKind,
    level: str,
) -> None:
    fire(bridge, transport, make_transition(kind, model=model, provider=provider))
    assert levels(transport) == [level]


def test_further_failures_in_an_incident_are_not_captured(
    bridge: SentryBridge, transport: CapturingTransport
) -> None:
    first = make_transition(K.FIRST_FAILURE)
    captured = fire(
        bridge,
        transport,
        first,
        first,  # a replayed first failure inside the same incident
        make_transition(K.BREAKER_OPENED),
        # a breaker transition without a state change is a further failure, not a step
        make_transition(K.BREAKER_OPENED, before=BreakerState.OPEN, after=BreakerState.OPEN),
        make_transition(K.HALF_OPEN),
        make_transition(K.HALF_OPEN_FAILED),
        make_transition(K.HALF_OPEN),
        make_transition(K.HALF_OPEN_FAILED),
    )
    assert captured == ["first_failure", "breaker_opened", "half_open_failed", "half_open_failed"]


def test_recovery_re_arms_first_failure_after_the_interval(
    bridge: SentryBridge, transport: CapturingTransport, clock: ManualClock
) -> None:
    assert fire(bridge, transport, make_transition(K.FIRST_FAILURE)) == ["first_failure"]
    assert fire(bridge, transport, make_transition(K.RECOVERED)) == []
    clock.advance(601)
    assert fire(bridge, transport, make_transition(K.FIRST_FAILURE)) == ["first_failure"]


def test_first_failure_interval_limits_a_flapping_model(
    bridge: SentryBridge, transport: CapturingTransport, clock: ManualClock
) -> None:
    fire(bridge, transport, make_transition(K.FIRST_FAILURE), make_transition(K.RECOVERED))
    clock.advance(599)  # re-armed, but inside the 10-minute interval
    assert fire(bridge, transport, make_transition(K.FIRST_FAILURE)) == []
    # the skipped first failure still opened an incident: its breaker steps are captured ...
    assert fire(bridge, transport, make_transition(K.BREAKER_OPENED)) == ["breaker_opened"]
    # ... and further first failures of it are not
    clock.advance(1000)
    assert fire(bridge, transport, make_transition(K.FIRST_FAILURE)) == []
    fire(bridge, transport, make_transition(K.RECOVERED))
    assert fire(bridge, transport, make_transition(K.FIRST_FAILURE)) == ["first_failure"]


def test_interval_is_per_model(bridge: SentryBridge, transport: CapturingTransport) -> None:
    captured = fire(
        bridge,
        transport,
        make_transition(K.FIRST_FAILURE, model="a"),
        make_transition(K.FIRST_FAILURE, model="b"),
        make_transition(K.FIRST_FAILURE, model="a", gateway="direct"),  # another gateway: another model key
    )
    assert captured == ["first_failure"] * 3
    assert [e["tags"]["model_id"] for e in transport.events] == ["a", "b", "a"]


def test_provider_outage_once_until_provider_recovered(
    bridge: SentryBridge, transport: CapturingTransport
) -> None:
    outage = make_transition(K.PROVIDER_OUTAGE, model="gpt-4o")
    again = make_transition(K.PROVIDER_OUTAGE, model="gpt-4o-mini")
    assert fire(bridge, transport, outage, again) == ["provider_outage"]
    assert fire(bridge, transport, make_transition(K.PROVIDER_RECOVERED)) == []
    assert fire(bridge, transport, again) == ["provider_outage"]


def test_zero_interval_disables_the_limit(transport: CapturingTransport, clock: ManualClock) -> None:
    bridge = SentryBridge(clock=clock, first_failure_interval_s=0)
    try:
        for _ in range(3):
            fire(bridge, transport, make_transition(K.FIRST_FAILURE), make_transition(K.RECOVERED))
        assert bridge.captured == 3
    finally:
        bridge.close()


class FakeRegistry:
    def __init__(self) -> None:
        self.listeners: list[object] = []

    def subscribe(self, listener: object) -> object:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)


def test_attach_subscribes_and_close_unsubscribes(transport: CapturingTransport) -> None:
    registry = FakeRegistry()
    bridge = SentryBridge()
    assert bridge.attach(registry) is bridge  # type: ignore[arg-type]
    assert registry.listeners == [bridge]
    bridge.close()
    assert registry.listeners == []
    bridge(make_transition(K.BREAKER_OPENED))  # after close: ignored, never raises
    assert bridge.flush(1.0)
    assert transport.events == []


def test_constructor_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="trace_url_template"):
        SentryBridge(trace_url_template="http://jaeger/{trace}")
    with pytest.raises(ValueError, match="first_failure_interval_s"):
        SentryBridge(first_failure_interval_s=-1)
    with pytest.raises(ValueError, match="queue_size"):
        SentryBridge(queue_size=0)


def test_missing_sentry_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # makes `import sentry_sdk` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'otel_model_health\[sentry\]'"):
        SentryBridge()
