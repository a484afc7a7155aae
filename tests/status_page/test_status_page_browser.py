"""The status page in a real browser (headless Chromium): live updates from a running simulated scenario,
a hostile model name, screenshots for the docs, and 500 models."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from kit.browser import browser
from kit.servers import serve_asgi
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext

from otel_model_health.asgi import health_asgi_app
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import BreakerConfig, BreakerState
from otel_model_health.instrument.transport import instrument_client
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import Fault, ManualClock, SimulatedProvider

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs"
XSS = "<img src=x onerror=alert(1)>"
MODELS = ("gpt-4o", "gpt-4o-mini", "o3", XSS)
LIVE_LIMIT_S = 5.0
FAST = BreakerConfig(
    minimum_calls=3, consecutive_failures=3, open_wait_s=1.0, max_open_wait_s=2.0, jitter=0.0
)


def _row(model: str) -> str:
    """A selector for a model's row: the name is matched through the DOM's dataset, never as markup."""
    return f"tr[data-model={_css_string(model)}]"


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Traffic:
    """Chat completions for every model, from one thread, through the instrumented OpenAI SDK."""

    def __init__(self, sim: SimulatedProvider, registry: HealthRegistry) -> None:
        http_client = instrument_client(
            openai.DefaultHttpxClient(), registry=registry, tracer_provider=TracerProvider()
        )
        self.client = openai.OpenAI(
            base_url=sim.openai_base_url, api_key="sk-test-0123456789", http_client=http_client, max_retries=0
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for model in MODELS:
                with contextlib.suppress(openai.APIError):  # the scripted outage: the registry counted it
                    self.client.chat.completions.create(
                        model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=5
                    )
            self._stop.wait(0.05)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _wait(predicate: Any, timeout: float) -> float:
    """Seconds until ``predicate()`` held (fails after ``timeout``)."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "condition not reached"
        time.sleep(0.02)
    return time.monotonic() - started


def _breaker(registry: HealthRegistry, model: str) -> BreakerState | None:
    state = registry.get(provider="openai", model=model, gateway="self_hosted")
    return None if state is None else state.breaker_state


@pytest.fixture
def page_of() -> Iterator[Any]:
    """``page_of(url)``: a fresh page on ``url`` whose JavaScript dialogs are recorded in ``page.dialogs``."""
    with browser() as chromium:
        context = chromium.new_context(viewport={"width": 1280, "height": 800})

        def open_page(url: str) -> Any:
            page = context.new_page()
            page.dialogs = []
            page.errors = []

            def on_dialog(dialog: Any) -> None:
                page.dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            # Selectors, not wait_for_function: the page's CSP (no eval) applies to a polled predicate too.
            page.wait_for_selector("body[data-updates]", timeout=10_000)
            return page

        yield open_page
        context.close()


def test_live_update_without_reload_and_a_hostile_name(sim: SimulatedProvider, page_of: Any) -> None:
    registry = HealthRegistry(config=FAST)
    app = health_asgi_app(registry, poll_interval_s=0.5)
    with serve_asgi(app) as base, Traffic(sim, registry):
        _wait(lambda: all(_breaker(registry, m) is BreakerState.CLOSED for m in MODELS), 10)
        page = page_of(base + "/health/ui")
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        for model in MODELS:
            page.wait_for_selector(_row(model), timeout=5_000)

        # The breaker opens in the simulated provider: the page shows it, without a reload.
        sim.script("gpt-4o", Fault.status(503), for_seconds=2.5)
        _wait(lambda: _breaker(registry, "gpt-4o") is BreakerState.OPEN, 10)
        opened = time.monotonic()
        page.wait_for_selector(f'{_row("gpt-4o")}[data-breaker="open"]', timeout=LIVE_LIMIT_S * 1000)
        shown_open = time.monotonic() - opened
        assert page.locator(_row("gpt-4o")).get_attribute("data-status") == "unhealthy"
        assert "breaker opened" in page.locator(_row("gpt-4o") + " .col-incidents").inner_text()

        # The provider answers again: half-open trials succeed and the page shows the recovery.
        _wait(lambda: _breaker(registry, "gpt-4o") is BreakerState.CLOSED, 15)
        recovered = time.monotonic()
        page.wait_for_selector(f'{_row("gpt-4o")}[data-breaker="closed"]', timeout=LIVE_LIMIT_S * 1000)
        shown_recovered = time.monotonic() - recovered
        incidents = page.locator(_row("gpt-4o") + " .col-incidents")
        incidents.locator("summary").click()
        steps = incidents.locator("li").all_inner_texts()
        assert any("recovered" in s for s in steps) and any("breaker opened" in s for s in steps), steps
        assert page.evaluate("window.__sameDocument === true")

        # The hostile name arrived in a real request body: it is text in the page, and no script ran.
        name = page.locator(_row(XSS) + " .model-name")
        assert name.inner_text() == XSS
        assert page.locator("main img").count() == 0
        assert page.dialogs == []
        assert page.errors == []
    print(f"\nbreaker open shown after {shown_open:.2f} s, recovery after {shown_recovered:.2f} s")


def _outage_registry(models: int = 6) -> tuple[HealthRegistry, ManualClock]:
    """A registry with an hour of simulated traffic (a manual clock), for deterministic screenshots."""
    clock = ManualClock(start=10_000.0)
    registry = HealthRegistry(clock=clock, wall_clock=lambda: 1_764_500_000.0 + clock())
    keys = [ModelKey(provider="openai", model=m) for m in ("gpt-4o", "gpt-4o-mini", "o3")]
    keys += [ModelKey(provider="anthropic", model=m) for m in ("claude-sonnet-4-6", "claude-haiku-4-5")]
    keys += [ModelKey(provider="openai", model="gpt-4.1", gateway="litellm")][: max(0, models - 5)]
    for minute in range(60):
        for i, key in enumerate(keys):
            for call in range(6):
                failed = minute in (20, 21) and i == 1 and call < 2
                registry.record(
                    key,
                    Outcome.FAILURE if failed else Outcome.SUCCESS,
                    latency_s=0.2 + 0.05 * i + 0.01 * call,
                    error_type="503" if failed else None,
                )
                clock.advance(60 / (6 * len(keys)))
    return registry, clock


def _fail_provider(registry: HealthRegistry, clock: ManualClock, provider: str) -> None:
    for n, key in enumerate(registry.model_keys()):
        if key.provider == provider:
            for i in range(6):
                registry.record(
                    key,
                    Outcome.FAILURE,
                    error_type="529",
                    status_code=529,
                    error_message="Overloaded (api key sk-ant-api03-abcdefghijklmnop)",
                    span_context=SpanContext(0x5EED0000 + 16 * n + i, 0xC0FFEE + i, is_remote=False),
                )
                clock.advance(0.2)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_for_the_docs(page_of: Any, scheme: str, tmp_path: Path) -> None:
    """docs/status-page-*.png, shown in docs/health-endpoint.md: healthy, then a provider outage. Written
    to docs/ with UPDATE_SCREENSHOTS=1 (a test run leaves the checkout as it was), else to a temporary
    directory: the page is still driven and checked."""
    shots = DOCS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    registry, clock = _outage_registry()
    app = health_asgi_app(
        registry, poll_interval_s=0.3, trace_url_template="http://localhost:16686/trace/{trace_id}"
    )
    with serve_asgi(app) as base:
        page = page_of(base + "/health/ui")
        page.emulate_media(color_scheme=scheme)
        if scheme == "light":
            page.screenshot(path=str(shots / "status-page-healthy.png"), full_page=True)
        _fail_provider(registry, clock, "anthropic")
        page.wait_for_selector('section[data-provider="anthropic"] .badge[data-status="unhealthy"]')
        page.locator(_row("claude-haiku-4-5") + " summary").click()
        page.screenshot(path=str(shots / f"status-page-outage-{scheme}.png"), full_page=True)
        # Unhealthy first: the provider in an outage is the first group on the page.
        assert page.locator("section.provider").first.get_attribute("data-provider") == "anthropic"
        assert "[REDACTED]" in page.locator(_row("claude-haiku-4-5")).inner_text()
        assert "sk-ant" not in page.content()
        trace = page.locator(_row("claude-haiku-4-5") + " .timeline a").first
        assert trace.get_attribute("href", timeout=1000).startswith("http://localhost:16686/trace/")
        assert page.errors == []


def test_500_models_load_and_filter(page_of: Any) -> None:
    registry = HealthRegistry(max_keys=500)
    for i in range(500):
        key = ModelKey(
            provider=("openai", "anthropic", "mistral_ai", "groq", "x_ai")[i % 5], model=f"model-{i:03d}"
        )
        for _ in range(3):
            registry.record(key, Outcome.SUCCESS, latency_s=0.1)
        if i % 50 == 0:
            registry.force_open(provider=key.provider, model=key.model)
    app = health_asgi_app(registry, poll_interval_s=60)
    with serve_asgi(app) as base:
        started = time.monotonic()
        page = page_of(base + "/health/ui")  # returns once the first document is rendered
        loaded = time.monotonic() - started
        in_browser = int(page.locator("body").get_attribute("data-first-render-ms") or -1)
        assert page.locator("tbody tr").count() == 500
        # Unhealthy first within each provider group.
        first = page.locator('section[data-provider="openai"] tbody tr').first
        assert first.get_attribute("data-status") == "unhealthy"
        page.fill("#filter", "model-42")
        visible = page.locator("tbody tr:not([hidden])")
        models = visible.evaluate_all("rows => rows.map(r => r.dataset.model)")
        assert sorted(models) == [f"model-{i}" for i in range(420, 430)]
        assert page.locator("#shown").inner_text() == "10 of 500 models shown"
    print(
        f"\n500 models: navigation start to first render {in_browser} ms (browser clock); "
        f"new tab + load + render {loaded * 1000:.0f} ms"
    )
