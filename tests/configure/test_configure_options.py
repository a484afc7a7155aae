"""options.Options is the one declaration of configure()'s options: the signature, the variables, the
checks and the docs tables all follow it, so adding an option is adding a field there (and a sample here)."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from options_doc import DOC, render

import otel_model_health as omh
from otel_model_health.options import OPTIONS, Options, read_options
from otel_model_health.settings import ConfigurationError, Settings, load_settings

EXAMPLE_SLOS = Path(__file__).resolve().parents[2] / "examples" / "slos.toml"

# One value per option, and the variable's text meaning the same (None: the option has no variable).
SAMPLES: dict[str, tuple[Any, str | None]] = {
    "sdk_disabled": (True, "true"),
    "service_name": ("svc", " svc "),
    "resource_attributes": ({"team": "llm ops"}, "team=llm%20ops"),
    "otlp_endpoint": ("http://opt:4318", "http://opt:4318"),
    "otlp_traces_endpoint": ("http://opt:4318/t", "http://opt:4318/t"),
    "otlp_metrics_endpoint": ("http://opt:4318/m", "http://opt:4318/m"),
    "otlp_protocol": ("grpc", "GRPC"),
    "otlp_traces_protocol": ("grpc", "grpc"),
    "otlp_metrics_protocol": ("grpc", "grpc"),
    "otlp_headers": ({"X-Key": "a b"}, "X-Key=a%20b"),
    "otlp_traces_headers": ({"x-t": "1"}, "x-t=1"),
    "otlp_metrics_headers": ({"x-m": "1"}, "x-m=1"),
    "metric_export_interval_s": (2.5, "2500"),
    "breaker": ({"open_wait_s": 5.0}, "open_wait_s=5"),
    "max_keys": (7, None),
    "store": ("redis://127.0.0.1:6390/0", "redis://127.0.0.1:6390/0"),
    "slos": (str(EXAMPLE_SLOS), str(EXAMPLE_SLOS)),
    "capture_content": (True, None),
    "health_http_port": (8081, " 8081 "),
    "health_http_host": ("0.0.0.0", "0.0.0.0"),
    "enforce": (True, "on"),
    "call_classifier": (lambda **_: (omh.Outcome.SUCCESS, None), None),
    "sentry_enabled": (True, "yes"),
    "sentry_dsn": ("https://k@o1.example/2", "https://k@o1.example/2"),
    "sentry_environment": ("prod", "prod"),
    "sentry_traces_sample_rate": (0.5, "0.5"),
    "critical_models": (["gpt-4o"], None),
    "trace_url_template": ("http://j/{trace_id}", None),
    "tracer_provider": (TracerProvider(), None),
    "meter_provider": (MeterProvider(), None),
    "set_global": (False, None),
}
# Options that configure() itself uses rather than the settings.
BUILD_ARGUMENTS = {"call_classifier", "tracer_provider", "meter_provider"}
# An endpoint for both signals, so that protocols and headers show in the settings.
BASE_ENV = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318"}


def test_every_option_has_a_sample_and_the_right_variables() -> None:
    assert set(SAMPLES) == set(OPTIONS)
    for name, spec in OPTIONS.items():
        assert (spec.env is None) is (spec.parse is None) is (SAMPLES[name][1] is None), name


def test_configure_signature_is_the_declaration() -> None:
    parameters = inspect.signature(omh.configure).parameters
    assert list(parameters) == [f.name for f in dataclasses.fields(Options)]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
    assert parameters["set_global"].default is True
    with pytest.raises(TypeError, match=r"configure\(\) got an unexpected keyword argument 'no_such'"):
        omh.configure(no_such=1)  # type: ignore[call-arg]


@pytest.mark.parametrize("name", [name for name, spec in OPTIONS.items() if spec.env is not None])
def test_each_variable_reads_as_its_option(name: str) -> None:
    value, text = SAMPLES[name]
    variable = OPTIONS[name].env
    assert variable is not None and text is not None
    from_option = read_options(Options(**{name: value}), {})[name]
    from_variable = read_options(Options(), {variable: text})[name]
    assert from_option.option is not None and from_option.env is None
    assert from_variable.env == from_option.option and from_variable.option is None
    assert list(from_variable.sources()) == [(from_option.option, variable, True)]
    # The variable's value reaches the settings as the option's does (only the endpoints' source differs).
    from_env = _unsourced(load_settings({**BASE_ENV, variable: text}))
    assert from_env == _unsourced(load_settings(BASE_ENV, **{name: value}))


def _unsourced(settings: Settings) -> Settings:
    traces, metrics = (
        None if signal is None else dataclasses.replace(signal, source="")
        for signal in (settings.traces, settings.metrics)
    )
    return dataclasses.replace(settings, traces=traces, metrics=metrics)


@pytest.mark.parametrize("name", sorted(set(OPTIONS) - BUILD_ARGUMENTS))
def test_each_option_reaches_the_settings(name: str) -> None:
    assert load_settings(BASE_ENV, **{name: SAMPLES[name][0]}) != load_settings(BASE_ENV)


def test_docs_tables_are_generated_from_the_declaration() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text, "docs/configuration.md is stale: run python tests/configure/options_doc.py"
    for name, spec in OPTIONS.items():
        assert f"| `{name}` |" in text and spec.doc in text, name


def test_a_set_variable_is_checked_even_when_overridden() -> None:
    # The OTLP exporters and sentry-sdk read some of these variables themselves: a bad one is reported.
    with pytest.raises(ConfigurationError, match=r"OTEL_EXPORTER_OTLP_PROTOCOL .*'http/json'"):
        load_settings({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, otlp_protocol="grpc")
    with pytest.raises(ConfigurationError, match=r"OTEL_EXPORTER_OTLP_ENDPOINT .*'collector'"):
        load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector", "OTEL_TRACES_EXPORTER": "none"})


def test_trace_url_template_is_checked_as_events_render_it() -> None:
    # Settings and the bridge had a check each: "{trace_id:d}" passed the first and failed the second,
    # after configure() had installed its providers.
    with pytest.raises(ConfigurationError, match=r"option trace_url_template .*'http://j/\{trace_id:d\}'"):
        load_settings({}, trace_url_template="http://j/{trace_id:d}")
    assert load_settings({}, trace_url_template="http://j/{trace_id}?s={span_id}").trace_url_template
