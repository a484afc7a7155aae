"""End to end against a real Sentry-compatible server (Bugsink): registry → bridge → sentry_sdk → HTTP.

Two models and one provider go through first failure → breaker opened → half-open trial failed →
recovery → a second incident, which ends in a provider outage. Read back through Bugsink's REST API:
exactly one issue per model plus one for the outage, titled by their headlines, and exactly the expected
events, each with our tags, the ``model_health`` context and the trace id of the span that caused it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from bugsink_server import BugsinkServer, run_bugsink
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext

from otel_model_health.health.types import BreakerConfig, HealthTransition
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.sentry import SentryBridge
from otel_model_health.testing import ManualClock

pytestmark = pytest.mark.integration

CAPTURED = {"first_failure", "breaker_opened", "half_open_failed", "provider_outage"}
OUR_TAGS = {
    "provider",
    "gateway",
    "model_id",
    "operation",
    "transition",
    "breaker_state",
    "error_type",
    "status",
}
GPT4O = ModelKey(provider="openai", model="gpt-4o", gateway="openrouter")
MINI = ModelKey(provider="openai", model="gpt-4o-mini", gateway="openrouter")


@pytest.fixture(scope="module")
def bugsink() -> Iterator[BugsinkServer]:
    with run_bugsink() as server:  # raises (the test errors, never skips) if Bugsink cannot start
        yield server


class Driver:
    """Feeds the real HealthRegistry, one span per recorded call, and keeps every transition."""

    def __init__(self, clock: ManualClock) -> None:
        from otel_model_health.health.registry import HealthRegistry

        self.clock = clock
        self.registry = HealthRegistry(
            config=BreakerConfig(jitter=0.0, open_wait_s=30.0, max_open_wait_s=300.0), clock=clock
        )
        self.transitions: list[HealthTransition] = []
        self.registry.subscribe(self.transitions.append)
        self.tracer = TracerProvider().get_tracer("test")

    def call(self, key: ModelKey, ok: bool) -> SpanContext:
        with self.tracer.start_as_current_span(f"chat {key.model}") as span:
            started = self.registry.now()
            context = span.get_span_context()
            if ok:
                self.registry.record(
                    key, Outcome.SUCCESS, latency_s=0.2, started_at=started, span_context=context
                )
            else:
                self.registry.record(
                    key,
                    Outcome.FAILURE,
                    error_type="503",
                    status_code=503,
                    latency_s=0.4,
                    started_at=started,
                    error_message="Service Unavailable (api_key=sk-or-v1-abcdefghijklmnop)",
                    span_context=context,
                )
            return span.get_span_context()


def drive(driver: Driver) -> None:
    clock = driver.clock
    for key in (GPT4O, MINI):
        for _ in range(3):
            driver.call(key, ok=True)
    # incident 1 of gpt-4o: first failure, breaker opens, a half-open trial fails, recovery
    for _ in range(5):
        driver.call(GPT4O, ok=False)
    clock.advance(31)  # OPEN wait (30 s) over: half-open
    driver.call(GPT4O, ok=False)  # the trial fails: OPEN again, wait doubles to 60 s
    clock.advance(61)
    for _ in range(3):
        driver.call(GPT4O, ok=True)  # three trials succeed: recovered
    # incident 2, after the bridge's 10-minute first-failure interval: both models open → provider outage
    clock.advance(700)
    for _ in range(5):
        driver.call(GPT4O, ok=False)
    for _ in range(5):
        driver.call(MINI, ok=False)


def test_incidents_reach_bugsink(bugsink: BugsinkServer) -> None:
    clock = ManualClock(10_000.0)
    sentry_sdk.init(dsn=bugsink.dsn, default_integrations=False, auto_enabling_integrations=False)
    bridge = SentryBridge(clock=clock, trace_url_template="http://localhost:16686/trace/{trace_id}")
    try:
        driver = Driver(clock)
        bridge.attach(driver.registry)
        drive(driver)
        assert bridge.flush(15.0)
    finally:
        bridge.close()
        sentry_sdk.get_client().close(timeout=5)
        sentry_sdk.get_global_scope().set_client(None)

    kinds = [(str(t.kind), t.key.model) for t in driver.transitions]
    expected = [
        ("first_failure", "gpt-4o"),
        ("breaker_opened", "gpt-4o"),
        ("half_open_failed", "gpt-4o"),
        ("first_failure", "gpt-4o"),
        ("breaker_opened", "gpt-4o"),
        ("first_failure", "gpt-4o-mini"),
        ("breaker_opened", "gpt-4o-mini"),
        ("provider_outage", "gpt-4o-mini"),
    ]
    assert [k for k in kinds if k[0] in CAPTURED] == expected, kinds
    assert {"half_open", "recovered"} <= {k[0] for k in kinds}  # seen by the bridge, not captured
    assert bridge.captured == len(expected) and bridge.dropped == 0

    assert bugsink.wait_for_event_count(len(expected)) == len(expected)
    issues = bugsink.issues()
    assert len(issues) == 3

    events: list[dict[str, Any]] = []
    per_issue: dict[str, list[str]] = {}
    for issue in issues:
        data = [event["data"] for event in bugsink.events(issue["id"])]
        events.extend(data)
        fingerprints = {tuple(d["fingerprint"]) for d in data}
        assert len(fingerprints) == 1  # one issue per fingerprint
        per_issue["/".join(fingerprints.pop())] = [d["tags"]["transition"] for d in data]
    assert per_issue == {
        "model-health/openai/openrouter/gpt-4o": [
            "first_failure", "breaker_opened", "half_open_failed", "first_failure", "breaker_opened",
        ],
        "model-health/openai/openrouter/gpt-4o-mini": ["first_failure", "breaker_opened"],
        "model-health-outage/openai": ["provider_outage"],
    }  # fmt: skip

    # The issue list tells the models and the outage apart: each issue is titled, as Bugsink shows it, by
    # the headline of its latest event (a message event: no made-up exception to title it "503: ...").
    from issues.utils import get_title_for_exception_type_and_value  # Bugsink's own

    titles = sorted(
        get_title_for_exception_type_and_value(issue["calculated_type"], issue["calculated_value"])
        for issue in issues
    )
    assert titles == [
        "Model unavailable: openai/gpt-4o via openrouter (breaker opened, 503)",
        "Model unavailable: openai/gpt-4o-mini via openrouter (breaker opened, 503)",
        "Provider outage: openai (2 models unhealthy)",
    ]
    headlines = {(d["tags"]["transition"], d["message"]) for d in events}
    assert ("first_failure", "Model failing: openai/gpt-4o via openrouter (first failure, 503)") in headlines
    assert (
        "half_open_failed",
        "Model still unavailable: openai/gpt-4o via openrouter (half-open trial failed, 503)",
    ) in headlines

    # Each event carries the trace of the call that caused its transition.
    causes = {
        (str(t.kind), t.key.model): f"{t.trace_id:032x}"
        for t in driver.transitions
        if str(t.kind) in CAPTURED
    }
    seen: Counter[tuple[str, str]] = Counter()
    for data in events:
        assert "exception" not in data
        tags = data["tags"]
        context = data["contexts"]["model_health"]
        if tags["transition"] == "provider_outage":
            # Provider-level tags only: a model_id:gpt-4o-mini search does not return the outage.
            assert {k: v for k, v in tags.items() if k in OUR_TAGS} == {
                "provider": "openai",
                "transition": "provider_outage",
            }
            assert context["provider_models"] == ["openai/gpt-4o@openrouter", "openai/gpt-4o-mini@openrouter"]
            assert context["last_model"] == "openai/gpt-4o-mini@openrouter"
            assert "sk-or-v1" not in context["last_error_message"]
            step = ("provider_outage", "gpt-4o-mini")
        else:
            assert set(tags) >= OUR_TAGS
            assert (
                tags["provider"] == "openai"
                and tags["gateway"] == "openrouter"
                and tags["error_type"] == "503"
            )
            assert context["status_code"] == 503
            assert "sk-or-v1" not in context["error_message"]
            step = (tags["transition"], tags["model_id"])
        seen[step] += 1
        trace_id = data["contexts"]["trace"]["trace_id"]
        assert len(trace_id) == 32
        assert context["trace_url"] == f"http://localhost:16686/trace/{trace_id}"
        assert data["level"] == {"first_failure": "warning", "provider_outage": "fatal"}.get(step[0], "error")
        if seen[step] == 1 and step != ("first_failure", "gpt-4o") and step != ("breaker_opened", "gpt-4o"):
            assert trace_id == causes[step]
    assert sorted(seen.elements()) == sorted(expected)
    # The repeated gpt-4o steps: the two events carry two different causing traces, the last one known.
    for step in (("first_failure", "gpt-4o"), ("breaker_opened", "gpt-4o")):
        traces = {d["contexts"]["trace"]["trace_id"] for d in events
                  if (d["tags"]["transition"], d["tags"].get("model_id")) == step}  # fmt: skip
        assert len(traces) == 2 and causes[step] in traces
