"""configure() lifecycle: app-owned providers, OTEL_SDK_DISABLED, idempotency, shutdown, Sentry wiring.

Tests that touch the global providers or sentry_sdk run configure() in a child process (globals can be set
once per process); the others pass providers explicitly and shut the handle down.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otlp_receivers import run_child

import otel_model_health as omh
from otel_model_health import defaults
from otel_model_health.health.processor import ModelHealthSpanProcessor
from otel_model_health.instrument.instruments import instruments_for
from otel_model_health.instrument.measurement import start_call
from otel_model_health.keys import ModelKey

# The submodule, not the function of the same name that the package exports.
configure_module = importlib.import_module("otel_model_health.configure")


class _App:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def metric_names(self) -> set[str]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


@pytest.fixture
def app() -> Iterator[_App]:
    app = _App()
    yield app
    handle = configure_module.current()
    if handle is not None:
        handle.shutdown()
    app.tracer_provider.shutdown()
    app.meter_provider.shutdown()


def _call(model: str, status: int = 200) -> None:
    call = start_call(instruments_for(), key=ModelKey(provider="openai", model=model), operation_name="chat")
    assert call is not None
    call.finish(status_code=status)


def test_given_providers_are_used_and_never_shut_down(app: _App) -> None:
    handle = omh.configure(tracer_provider=app.tracer_provider, meter_provider=app.meter_provider)
    assert handle.tracer_provider is app.tracer_provider
    assert handle.meter_provider is app.meter_provider
    assert not handle.owns_tracer_provider and not handle.owns_meter_provider
    assert isinstance(handle.span_processor, ModelHealthSpanProcessor)
    assert defaults.default_registry() is handle.registry

    _call("given-model")
    assert [s.name for s in app.spans.get_finished_spans()] == ["chat given-model"]
    assert {"gen_ai.client.operation.duration", "model_health.outcomes"} <= app.metric_names()
    state = handle.registry.get(provider="openai", model="given-model")
    assert state is not None and state.calls_in_window == 1

    handle.shutdown()
    # Still the app's, still working: our shutdown flushed them but did not shut them down.
    with app.tracer_provider.get_tracer("app").start_as_current_span("after"):
        pass
    assert [s.name for s in app.spans.get_finished_spans()][-1] == "after"
    # Our observable instruments went quiet; the defaults were reset.
    assert "model_health.outcomes" not in app.metric_names()
    assert configure_module.current() is None
    assert defaults.default_registry() is not handle.registry


def test_second_call_returns_same_handle_and_warns_on_different_options(
    app: _App, caplog: pytest.LogCaptureFixture
) -> None:
    first = omh.configure(tracer_provider=app.tracer_provider, meter_provider=app.meter_provider, max_keys=10)
    with caplog.at_level(logging.WARNING, logger="otel_model_health"):
        same = omh.configure(
            tracer_provider=app.tracer_provider, meter_provider=app.meter_provider, max_keys=10
        )
    assert same is first
    assert not [r for r in caplog.records if "already called" in r.getMessage()]
    with caplog.at_level(logging.WARNING, logger="otel_model_health"):
        other = omh.configure(
            tracer_provider=app.tracer_provider, meter_provider=app.meter_provider, max_keys=99
        )
    assert other is first
    assert first.registry.max_keys == 10
    warnings = [r.getMessage() for r in caplog.records if "already called" in r.getMessage()]
    assert len(warnings) == 1 and "max_keys" in warnings[0]

    first.shutdown()
    first.shutdown()  # idempotent
    again = omh.configure(tracer_provider=app.tracer_provider, meter_provider=app.meter_provider)
    assert again is not first and not again.is_shut_down


def test_shutdown_stops_attached_monitor_first_and_flushes(app: _App) -> None:
    handle = omh.configure(tracer_provider=app.tracer_provider, meter_provider=app.meter_provider)
    order: list[str] = []

    class Monitor:
        def stop(self) -> None:
            order.append("monitor")

    assert isinstance(handle.attach_monitor(Monitor()), Monitor)
    handle.on_shutdown(lambda: order.append("hook"))
    assert handle.force_flush(timeout_s=5) is True
    handle.shutdown()
    assert order == ["hook", "monitor"]  # last registered first


def test_options_reach_registry_and_defaults(app: _App) -> None:
    seen: list[int | None] = []

    def classifier(**kwargs: object) -> tuple[omh.Outcome, str | None]:
        seen.append(kwargs.get("status_code"))  # type: ignore[arg-type]
        return omh.Outcome.NEUTRAL, "custom"

    handle = omh.configure(
        tracer_provider=app.tracer_provider,
        meter_provider=app.meter_provider,
        breaker={"consecutive_failures": 2, "minimum_calls": 2},
        max_keys=3,
        capture_content=True,
        call_classifier=classifier,  # type: ignore[arg-type]
    )
    assert handle.registry.config.consecutive_failures == 2
    assert handle.registry.max_keys == 3
    assert defaults.capture_content_enabled() is True
    _call("classified-model", 503)
    assert seen == [503]
    state = handle.registry.get(provider="openai", model="classified-model")
    assert state is not None and state.failures_in_window == 0  # neutral, by our classifier
    handle.shutdown()
    assert defaults.call_classifier() is not classifier


APP_OWNED = """
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
tp = TracerProvider()
tp.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(tp)
reader = InMemoryMetricReader()
mp = MeterProvider(metric_readers=[reader])
metrics.set_meter_provider(mp)

import otel_model_health as omh
from otel_model_health.health.processor import ModelHealthSpanProcessor

handle = omh.configure()  # OTEL_EXPORTER_OTLP_ENDPOINT is set: the app owns export, none is added
assert trace.get_tracer_provider() is tp and metrics.get_meter_provider() is mp
assert handle.tracer_provider is tp and handle.meter_provider is mp
assert not handle.owns_tracer_provider and not handle.owns_meter_provider
processors = tp._active_span_processor._span_processors
assert sum(isinstance(p, ModelHealthSpanProcessor) for p in processors) == 1, processors
assert len(processors) == 2, processors  # the app's and ours: no exporter added

# A foreign GenAI span (another instrumentation) reaches the registry through our processor.
with tp.get_tracer("other").start_as_current_span(
    "chat foreign-model",
    attributes={"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "foreign-model", "http.response.status_code": 529},
):
    pass
state = handle.registry.get(provider="anthropic", model="foreign-model")
assert state is not None and state.failures_in_window == 1, state
data = reader.get_metrics_data()
names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
assert "model_health.outcomes" in names, names
handle.shutdown()
with tp.get_tracer("app").start_as_current_span("after-shutdown"):
    pass
assert exporter.get_finished_spans()[-1].name == "after-shutdown"
print("OK")
"""


@pytest.mark.integration
def test_app_owned_global_providers_are_left_in_place() -> None:
    # An unreachable endpoint: had an exporter been added, nothing would break, but the assertion on the
    # processor list would.
    result = run_child(APP_OWNED, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert result.stdout.strip() == "OK"


CREATED = """
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
import otel_model_health as omh

handle = omh.configure(set_global={set_global})
assert isinstance(handle.tracer_provider, TracerProvider) and handle.owns_tracer_provider
assert isinstance(handle.meter_provider, MeterProvider) and handle.owns_meter_provider
print("GLOBAL", trace.get_tracer_provider() is handle.tracer_provider,
      metrics.get_meter_provider() is handle.meter_provider)
print("RESOURCE", handle.tracer_provider.resource.attributes["service.name"])
handle.shutdown()
"""


@pytest.mark.integration
@pytest.mark.parametrize("set_global", [True, False])
def test_created_providers_installed_as_global_only_when_asked(set_global: bool) -> None:
    result = run_child(CREATED.format(set_global=set_global), {"OTEL_SERVICE_NAME": "created-svc"})
    assert f"GLOBAL {set_global} {set_global}" in result.stdout
    assert "RESOURCE created-svc" in result.stdout


SDK_DISABLED = """
import sys
from opentelemetry import metrics, trace
import otel_model_health as omh
from otel_model_health.instrument.instruments import instruments_for
from otel_model_health.instrument.measurement import start_call
from otel_model_health.keys import ModelKey

handle = omh.configure()
assert handle.tracer_provider is None and handle.meter_provider is None, handle
assert not handle.owns_tracer_provider and not handle.owns_meter_provider
assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
assert type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"
assert not any(name.startswith("opentelemetry.exporter") for name in sys.modules)
for status in (200, 503):
    call = start_call(instruments_for(), key=ModelKey(provider="openai", model="m"), operation_name="chat")
    call.finish(status_code=status)
state = handle.registry.get(provider="openai", model="m")
print("STATE", state.calls_in_window, state.failures_in_window)
handle.shutdown()
"""


@pytest.mark.integration
def test_sdk_disabled_creates_nothing_but_health_still_works() -> None:
    result = run_child(
        SDK_DISABLED, {"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    )
    assert "STATE 2 1" in result.stdout


SENTRY_APP_INITIALISED = """
import sentry_sdk
from sentry_sdk.transport import Transport

events = []

class Capture(Transport):
    def capture_envelope(self, envelope):
        event = envelope.get_event()
        if event is not None:
            events.append(event)

sentry_sdk.init(dsn="http://public@127.0.0.1:9/1", transport=Capture, default_integrations=False)
client = sentry_sdk.get_client()

import otel_model_health as omh
from otel_model_health.instrument.instruments import instruments_for
from otel_model_health.instrument.measurement import start_call
from otel_model_health.keys import ModelKey

handle = omh.configure(sentry_enabled=True, critical_models=["crit-model"])
assert handle.sentry_bridge is not None
assert sentry_sdk.get_client() is client  # the app's client was left alone
for _ in range(5):
    call = start_call(instruments_for(), key=ModelKey(provider="openai", model="crit-model"),
                      operation_name="chat")
    call.finish(status_code=503)
handle.shutdown()  # flushes the bridge into the app's client
print("EVENTS", sorted(e["tags"]["transition"] for e in events))
print("LEVELS", sorted(e["level"] for e in events))
"""


@pytest.mark.integration
def test_sentry_bridge_uses_the_apps_client_and_shutdown_flushes_it() -> None:
    result = run_child(SENTRY_APP_INITIALISED, {})
    assert "EVENTS ['breaker_opened', 'first_failure']" in result.stdout
    assert "LEVELS ['error', 'fatal']" in result.stdout  # critical model: one level higher


SENTRY_FROM_ENV = """
import sys
# Keeps the child fast: disabling sentry-sdk's OpenAI/Anthropic integrations imports both SDKs (seconds);
# that part is the sentry package's to test.
sys.modules["openai"] = sys.modules["anthropic"] = None
import sentry_sdk
import otel_model_health as omh

assert not sentry_sdk.is_initialized()
handle = omh.configure()
client = sentry_sdk.get_client()
assert sentry_sdk.is_initialized()
print("DSN", client.dsn)
print("ENV", client.options["environment"])
print("RATE", client.options["traces_sample_rate"])
print("BRIDGE", handle.sentry_bridge is not None)
handle.shutdown()
"""


@pytest.mark.integration
def test_sentry_initialised_from_env_when_the_app_did_not() -> None:
    result = run_child(
        SENTRY_FROM_ENV,
        {
            "SENTRY_ENABLED": "true",
            "SENTRY_DSN": "http://public@127.0.0.1:9/42",
            "SENTRY_ENVIRONMENT": "staging",
            "SENTRY_TRACES_SAMPLE_RATE": "0.25",
        },
    )
    assert "DSN http://public@127.0.0.1:9/42" in result.stdout
    assert "ENV staging" in result.stdout
    assert "RATE 0.25" in result.stdout
    assert "BRIDGE True" in result.stdout


@pytest.mark.integration
def test_sentry_disabled_by_default_even_with_a_dsn() -> None:
    result = run_child(
        "import sentry_sdk, otel_model_health as omh\n"
        "h = omh.configure()\n"
        "print('BRIDGE', h.sentry_bridge, sentry_sdk.is_initialized())\n"
        "h.shutdown()\n",
        {"SENTRY_DSN": "http://public@127.0.0.1:9/42"},
    )
    assert "BRIDGE None False" in result.stdout


RECONFIGURE = """
from opentelemetry import trace
import otel_model_health as omh

first = omh.configure()
first.shutdown()
second = omh.configure(service_name="second")
# The first (shut down) global provider is recognised as ours, not adopted as the app's.
assert second is not first and second.owns_tracer_provider, second
assert trace.get_tracer_provider() is first.tracer_provider  # globals are set once per process
assert second.tracer_provider is not first.tracer_provider
print("RESOURCE", second.tracer_provider.resource.attributes["service.name"])
second.shutdown()
"""


@pytest.mark.integration
def test_configure_after_shutdown_creates_fresh_providers() -> None:
    assert "RESOURCE second" in run_child(RECONFIGURE, {}).stdout
