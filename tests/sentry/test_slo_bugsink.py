"""SLO alerts end to end against the real Bugsink: registry -> bridge -> sentry_sdk -> HTTP.

A model with a page and a ticket alert goes through two outages (simulated time, ManualClock). Each alert
start is exactly one event: fingerprinted by SLO, model and severity (a page is `error`, a ticket
`warning`), linked to the trace of a failed call of the alert's short window. Alerts that stay active, and
resolutions, send nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sentry_sdk
from bugsink_server import BugsinkServer, run_bugsink
from opentelemetry.sdk.trace import TracerProvider

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import HealthTransition, TransitionKind
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.sentry import SentryBridge
from otel_model_health.slo import SLO, BurnRateAlert
from otel_model_health.testing import ManualClock

pytestmark = pytest.mark.integration

KEY = ModelKey(provider="openai", model="gpt-4o", gateway="openrouter")
SLO_ = SLO(
    "chat-availability",
    objective=0.999,
    alerts=(BurnRateAlert("page", 14.4, "1h", "5m"), BurnRateAlert("ticket", 1.0, "3d", "6h")),
)


@pytest.fixture(scope="module")
def bugsink() -> Iterator[BugsinkServer]:
    with run_bugsink() as server:
        yield server


def test_each_alert_start_is_one_event(bugsink: BugsinkServer) -> None:
    clock = ManualClock(1_000_000 * 60.0)
    registry = HealthRegistry(clock=clock, wall_clock=clock, slos=[SLO_])
    seen: list[HealthTransition] = []
    registry.subscribe(seen.append)
    tracer = TracerProvider().get_tracer("test")
    bad_traces: set[str] = set()

    def calls(n: int, every_s: float, *, ok: bool) -> None:
        for _ in range(n):
            with tracer.start_as_current_span("chat gpt-4o") as span:
                context = span.get_span_context()
                outcome = Outcome.SUCCESS if ok else Outcome.FAILURE
                registry.record(KEY, outcome, error_type=None if ok else "503", span_context=context)
                if not ok:
                    bad_traces.add(f"{context.trace_id:032x}")
            clock.advance(every_s)

    sentry_sdk.init(dsn=bugsink.dsn, default_integrations=False, auto_enabling_integrations=False)
    bridge = SentryBridge(clock=clock)
    try:
        bridge.attach(registry)
        calls(3 * 24 * 60, 60.0, ok=True)  # three clean days, a call a minute
        calls(180, 1.0, ok=False)  # a 3-minute outage: the page and the ticket start
        calls(120, 10.0, ok=True)  # 20 minutes clean: the page resolves (5 min window clean)
        calls(180, 1.0, ok=False)  # a second outage: the page starts again; the ticket is still on
        assert bridge.flush(15.0)
    finally:
        bridge.close()
        sentry_sdk.get_client().close(timeout=5)
        sentry_sdk.get_global_scope().set_client(None)

    alerts = [(str(t.kind), t.slo_alert.severity) for t in seen if t.slo_alert is not None]
    assert alerts == [
        ("slo_alert_started", "page"),
        ("slo_alert_started", "ticket"),
        ("slo_alert_resolved", "page"),
        ("slo_alert_started", "page"),
    ]
    starts = [t for t in seen if t.kind is TransitionKind.SLO_ALERT_STARTED]

    slo_issues: dict[str, list[dict[str, object]]] = {}
    bugsink.wait_for_event_count(bridge.captured)
    for issue in bugsink.issues():
        for event in bugsink.events(issue["id"]):
            data = event["data"]
            if data["fingerprint"][0] == "model-health-slo":
                slo_issues.setdefault("/".join(data["fingerprint"]), []).append(data)
    page = "model-health-slo/chat-availability/openai/openrouter/gpt-4o/page"
    ticket = "model-health-slo/chat-availability/openai/openrouter/gpt-4o/ticket"
    assert {name: len(events) for name, events in slo_issues.items()} == {page: 2, ticket: 1}
    assert {e["level"] for e in slo_issues[page]} == {"error"}
    assert {e["level"] for e in slo_issues[ticket]} == {"warning"}
    for events in slo_issues.values():
        for data in events:
            trace = data["contexts"]["trace"]["trace_id"]  # type: ignore[index]
            assert trace in bad_traces  # a failed call of the short window
            assert data["tags"]["slo"] == "chat-availability"  # type: ignore[index]
            context = data["contexts"]["model_health"]  # type: ignore[index]
            assert context["long_burn_rate"] > context["burn_rate_threshold"]
    assert {f"{t.trace_id:032x}" for t in starts} == {
        data["contexts"]["trace"]["trace_id"]  # type: ignore[index]
        for events in slo_issues.values()
        for data in events
    }
