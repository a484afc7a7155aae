"""The status page without a browser: the engine's recent series and incident timeline, the versioned
document, and the ASGI routes (headers, auth hook, prefix, errors)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.trace import SpanContext

import otel_model_health.status_page as status_page
from otel_model_health.asgi import health_asgi_app
from otel_model_health.health.recent import BUCKET_S, BUCKETS, TIMELINE_LENGTH
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import BreakerConfig, CallResult, TransitionKind
from otel_model_health.keys import ModelKey
from otel_model_health.option_values import ConfigurationError
from otel_model_health.outcomes import Outcome
from otel_model_health.slo import SLO
from otel_model_health.testing import ManualClock

GPT = ModelKey(provider="openai", model="gpt-4o")
CLAUDE = ModelKey(provider="anthropic", model="claude-haiku-4-5")
CONFIG = BreakerConfig(minimum_calls=3, consecutive_failures=3, open_wait_s=10.0, jitter=0.0)
STATIC = Path(status_page.__file__).parent / "static"


def _registry(**kwargs: Any) -> tuple[HealthRegistry, ManualClock]:
    clock = ManualClock(start=6000.0)  # a minute boundary on the registry clock
    registry = HealthRegistry(
        config=CONFIG, clock=clock, wall_clock=lambda: 1_700_000_000.0 + clock(), **kwargs
    )
    return registry, clock


def _span(n: int) -> SpanContext:
    return SpanContext(0xABC0 + n, 0xDEF0 + n, is_remote=False)


def _outage_and_recovery(registry: HealthRegistry, clock: ManualClock, key: ModelKey = GPT) -> None:
    for n in range(3):
        registry.record(key, Outcome.FAILURE, error_type="503", span_context=_span(n))
        clock.advance(1)
    clock.advance(10)  # the open wait: half-open
    for n in range(3):
        registry.record(key, Outcome.SUCCESS, latency_s=0.2, span_context=_span(10 + n))


async def _get(app: Any, url: str, method: str = "GET", **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        return await c.request(method, url, **kwargs)


# --- the engine's recent past ---------------------------------------------------------------------------
def test_recent_counts_successes_and_failures_per_bucket() -> None:
    registry, clock = _registry()  # 6000 s: the start of a bucket
    assert BUCKET_S * BUCKETS == 3600
    registry.record(GPT, Outcome.SUCCESS)
    registry.record(GPT, Outcome.SUCCESS)
    registry.record(GPT, Outcome.FAILURE, error_type="503")
    registry.record(GPT, Outcome.RATE_LIMITED)  # neither good nor bad, as in the success rate
    clock.advance(2 * BUCKET_S)  # one empty bucket between
    registry.record(GPT, Outcome.SUCCESS)
    [(state, recent)] = registry.recent()
    assert state.key == GPT
    assert len(recent.good) == len(recent.bad) == BUCKETS
    assert recent.good[-3:] == (2, 0, 1) and recent.bad[-3:] == (1, 0, 0)
    assert sum(recent.good) == 3 and sum(recent.bad) == 1
    assert recent.end == 1_700_000_000.0 + 6000.0 + 3 * BUCKET_S  # end of the current bucket, wall clock


def test_recent_forgets_what_is_older_than_an_hour() -> None:
    registry, clock = _registry()
    registry.record(GPT, Outcome.FAILURE, error_type="503")
    clock.advance(30 * 60)
    registry.record(GPT, Outcome.SUCCESS)
    [(_, recent)] = registry.recent()
    assert (sum(recent.good), sum(recent.bad)) == (1, 1)
    clock.advance(31 * 60)  # the failure's bucket is more than an hour old
    [(_, recent)] = registry.recent()
    assert (sum(recent.good), sum(recent.bad)) == (1, 0)
    clock.advance(24 * 3600)
    [(_, recent)] = registry.recent()
    assert (sum(recent.good), sum(recent.bad)) == (0, 0)


def test_a_busy_bucket_saturates_and_keeps_its_ratio() -> None:
    registry, clock = _registry()
    for _ in range(3):
        registry.record_result(GPT, CallResult(Outcome.SUCCESS))
    state = registry._store.lookup(GPT)
    assert state is not None
    state.totals["inference"][0] += 3 * 70_000 - 3  # as if 210,000 successes ...
    state.totals["inference"][1] += 70_000  # ... and 70,000 failures came in this bucket
    clock.advance(BUCKET_S)
    [(_, recent)] = registry.recent()
    assert (recent.good[-2], recent.bad[-2]) == (65535, 21845)  # 3:1, within 16 bits


def test_the_timeline_keeps_the_incident_steps_with_their_spans() -> None:
    registry, clock = _registry()
    registry.record(GPT, Outcome.SUCCESS)
    _outage_and_recovery(registry, clock)
    [(_, recent)] = registry.recent()
    kinds = [entry.kind for entry in recent.timeline]
    assert kinds == [
        TransitionKind.FIRST_FAILURE,
        TransitionKind.BREAKER_OPENED,
        TransitionKind.HALF_OPEN,
        TransitionKind.RECOVERED,
    ]
    first, opened, half_open, recovered = recent.timeline
    assert (first.trace_id, first.error_type) == (0xABC0, "503")
    assert opened.trace_id == 0xABC1  # the failure that opened it (2 of 3 calls failed)
    assert half_open.trace_id == 0xABC0 + 10  # the call that found the wait elapsed
    assert recovered.trace_id == 0xABC0 + 12
    assert [e.at for e in recent.timeline] == sorted(e.at for e in recent.timeline)


def test_the_timeline_is_bounded_and_leaves_provider_steps_out() -> None:
    registry, clock = _registry()
    registry.record(CLAUDE, Outcome.SUCCESS)
    for _ in range(TIMELINE_LENGTH):
        registry.force_open(provider="openai", model="gpt-4o")
        clock.advance(1)
        registry.reset(provider="openai", model="gpt-4o")
    [(_, claude), (_, gpt)] = registry.recent()
    assert len(gpt.timeline) == TIMELINE_LENGTH  # of 2 x TIMELINE_LENGTH steps: the newest kept
    assert [e.kind for e in gpt.timeline[-2:]] == [TransitionKind.BREAKER_OPENED, TransitionKind.RECOVERED]
    assert gpt.timeline[-1].at == registry.wall_time()
    assert claude.timeline == ()
    # two models of one provider open together: a provider outage, which is not a model's step
    registry.record(ModelKey(provider="openai", model="o3"), Outcome.SUCCESS)
    for _ in range(3):
        registry.record(GPT, Outcome.FAILURE, error_type="503")
        registry.record(ModelKey(provider="openai", model="o3"), Outcome.FAILURE, error_type="503")
    assert registry.provider_outages() == {"openai"}
    for _, recent in registry.recent():
        assert TransitionKind.PROVIDER_OUTAGE not in {e.kind for e in recent.timeline}


# --- the document ---------------------------------------------------------------------------------------
class _Events:
    """Event ids by incident step, as SentryBridge.event_id answers them."""

    def __init__(self) -> None:
        self.ids: dict[tuple[ModelKey, TransitionKind, float], str] = {}

    def event_id(self, key: ModelKey, kind: TransitionKind, at: float) -> str | None:
        return self.ids.get((key, kind, at))

    def __call__(self, transition: Any) -> None:  # a registry listener: "sends" each opening
        if transition.kind is TransitionKind.BREAKER_OPENED:
            self.ids[(transition.key, transition.kind, transition.at)] = "e" * 32


def test_the_document_version_1() -> None:
    registry, clock = _registry()
    events = _Events()
    registry.subscribe(events)
    registry.record(CLAUDE, Outcome.SUCCESS, latency_s=0.4)
    registry.record(GPT, Outcome.SUCCESS)
    _outage_and_recovery(registry, clock)
    registry.record(GPT, Outcome.FAILURE, error_type="503", error_message="bad key sk-abcdefghijklmnop1234")
    document = status_page.status_document(
        registry,
        trace_url_template="https://traces.example/t/{trace_id}?span={span_id}",
        sentry=events,
        sentry_url_template="https://sentry.example/e/{event_id}/",
    )
    assert document["version"] == status_page.VERSION == 1
    assert document["status"] == "degraded"
    assert document["counts"]["total"] == 2 and set(document["providers"]) == {"openai", "anthropic"}
    claude, gpt = document["models"]
    assert (claude["model"], gpt["model"]) == ("claude-haiku-4-5", "gpt-4o")
    assert claude["latency_p50_s"] == 0.4 and claude["incidents"] == [] and claude["slos"] == []
    assert sum(gpt["history"]["good"]) == 4 and sum(gpt["history"]["bad"]) == 4
    assert gpt["history"]["bucket_s"] == 120 and len(gpt["history"]["good"]) == 30
    assert gpt["last_error"]["type"] == "503"
    assert "sk-abc" not in gpt["last_error"]["message"] and "[REDACTED]" in gpt["last_error"]["message"]
    steps = {step["kind"]: step for step in gpt["incidents"]}
    opened = steps["breaker_opened"]
    assert opened["trace_id"] == f"{0xABC1:032x}"
    assert opened["trace_url"] == f"https://traces.example/t/{0xABC1:032x}?span={0xDEF1:016x}"
    assert opened["sentry_event_id"] == "e" * 32
    assert opened["sentry_url"] == "https://sentry.example/e/" + "e" * 32 + "/"
    assert steps["first_failure"]["sentry_url"] is None


def test_slo_budgets_when_the_registry_has_slos() -> None:
    registry, _ = _registry(slos=[SLO(name="chat-availability", objective=0.99)])
    registry.record(GPT, Outcome.SUCCESS)
    registry.record(GPT, Outcome.FAILURE, error_type="503")
    [gpt] = status_page.status_document(registry)["models"]
    [slo] = gpt["slos"]
    assert slo["name"] == "chat-availability" and slo["objective"] == 0.99
    assert slo["error_budget_remaining"] < 0  # one failure in two calls: the budget is overspent


# --- the routes -----------------------------------------------------------------------------------------
async def test_every_page_route_is_served_with_a_strict_csp() -> None:
    registry, _ = _registry()
    registry.record(GPT, Outcome.SUCCESS)
    app = health_asgi_app(registry)
    for url, content_type in [
        ("/health/ui", "text/html"),
        ("/health/ui/", "text/html"),
        ("/health/ui/app.js", "text/javascript"),
        ("/health/ui/style.css", "text/css"),
        ("/health/ui/favicon.svg", "image/svg+xml"),
        ("/health/ui/data", "application/json"),
    ]:
        response = await _get(app, url)
        assert response.status_code == 200, url
        assert response.headers["content-type"].startswith(content_type), url
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
    assert (await _get(app, "/health/ui/data")).json()["models"][0]["model"] == "gpt-4o"
    head = await _get(app, "/health/ui", "HEAD")
    assert head.status_code == 200 and head.content == b""
    assert (await _get(app, "/health/ui", "POST")).status_code == 405
    assert (await _get(app, "/health/ui/other.js")).status_code == 404


async def test_the_page_names_its_files_under_the_prefix_and_mount_point() -> None:
    app = health_asgi_app(HealthRegistry(), path_prefix="/ops/models")
    response = await _get(app, "/ops/models/ui")
    assert 'src="/ops/models/ui/app.js"' in response.text
    assert 'data-source="/ops/models/ui/data"' in response.text
    # Mounted under a root path (Starlette's Mount, uvicorn's --root-path): absolute URLs include it,
    # escaped for the attribute.
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/a&b/ops/models/ui",
        "root_path": "/a&b",
        "query_string": b"",
    }
    await app(scope, receive, send)
    assert b'src="/a&amp;b/ops/models/ui/app.js"' in sent[1]["body"]


async def test_ui_false_serves_no_page() -> None:
    assert (await _get(health_asgi_app(HealthRegistry(), ui=False), "/health/ui")).status_code == 404


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_the_auth_hook_sees_the_scope_and_decides(asynchronous: bool) -> None:
    seen: list[dict[str, Any]] = []

    def allow(scope: dict[str, Any]) -> bool:
        seen.append(scope)
        return dict(scope["headers"]).get(b"authorization") == b"Bearer ops"

    async def allow_async(scope: dict[str, Any]) -> bool:
        return allow(scope)

    app = health_asgi_app(HealthRegistry(), auth=allow_async if asynchronous else allow)
    for url in ("/health/ui", "/health/ui/data", "/health/ui/app.js"):
        denied = await _get(app, url)
        assert denied.status_code == 403 and "gpt" not in denied.text, url
        assert (await _get(app, url, headers={"authorization": "Bearer ops"})).status_code == 200, url
    assert seen[0]["path"] == "/health/ui"
    # The JSON health routes are for probes and stay as they were.
    assert (await _get(app, "/health")).status_code == 200


async def test_an_auth_hook_that_raises_denies_and_is_counted() -> None:
    def broken(scope: dict[str, Any]) -> bool:
        raise RuntimeError("auth backend down")

    from otel_model_health._internal import internal_error_count

    before = internal_error_count()
    response = await _get(health_asgi_app(HealthRegistry(), auth=broken), "/health/ui/data")
    assert response.status_code == 500 and "auth backend" not in response.text
    assert internal_error_count() == before + 1


def test_bad_link_templates_fail_when_the_app_is_built() -> None:
    with pytest.raises(ConfigurationError):
        health_asgi_app(HealthRegistry(), trace_url_template="https://t/{trace}")
    with pytest.raises(ConfigurationError):
        health_asgi_app(HealthRegistry(), sentry_url_template="https://s/{id}")


def test_the_script_never_parses_text_as_html() -> None:
    """Model names are attacker-controlled: the page sets text with textContent, never as markup."""
    script = (STATIC / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert re.search(r"\.textContent\s*=", script)
    shell = (STATIC / "index.html").read_text()
    assert "<script>" not in shell and " style=" not in shell
    assert not re.search(r"\son[a-z]+\s*=", shell)  # no inline event handlers


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=400),  # seconds until this call
            st.sampled_from([Outcome.SUCCESS, Outcome.FAILURE, Outcome.RATE_LIMITED]),
            st.booleans(),  # read the series (as the page does) after this call
        ),
        max_size=120,
    ),
    st.floats(min_value=0, max_value=4000),  # quiet time before the last read
)
def test_recent_matches_a_count_of_the_calls(calls: list[tuple[float, Outcome, bool]], quiet: float) -> None:
    """Per-bucket counts equal a brute-force count of a log of the calls, whatever
    the gaps, reads and outcomes (any breaker path: this config opens and recovers along the way)."""
    registry, clock = _registry()
    log: list[tuple[float, Outcome]] = []
    for wait, outcome, read in calls:
        clock.advance(wait)
        registry.record(GPT, outcome, error_type=None if outcome is Outcome.SUCCESS else "503")
        log.append((clock(), outcome))
        if read:
            registry.recent()
    clock.advance(quiet)
    found = registry.recent()
    if not log:
        assert found == []
        return
    [(_, recent)] = found
    end = recent.end - 1_700_000_000.0  # back on the registry clock
    for i in range(BUCKETS):
        start = end - (BUCKETS - i) * BUCKET_S
        minute = [o for t, o in log if start <= t < start + BUCKET_S]
        assert recent.good[i] == minute.count(Outcome.SUCCESS), i
        assert recent.bad[i] == minute.count(Outcome.FAILURE), i
