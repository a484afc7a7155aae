"""Reading and validating options and environment variables (settings.load_settings), and configure()'s
refusal of invalid configuration with one message naming the option or variable and the bad value."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import otel_model_health as omh
from otel_model_health.health.types import BreakerConfig
from otel_model_health.settings import ConfigurationError, load_settings


def test_defaults_without_environment() -> None:
    s = load_settings({})
    assert s.sdk_disabled is False
    assert s.traces is None and s.metrics is None  # no endpoint: no exporters
    assert s.metric_export_interval_s == 60.0
    assert s.breaker == BreakerConfig()
    assert s.max_keys == 500
    assert s.capture_content is None
    assert s.sentry.enabled is False and s.sentry.active is False
    assert s.set_global is True
    assert s.resource_dict() == {}


def test_general_endpoint_gets_signal_paths_for_http() -> None:
    s = load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
    assert s.traces is not None and s.metrics is not None
    assert s.traces.endpoint == "http://collector:4318/v1/traces"
    assert s.metrics.endpoint == "http://collector:4318/v1/metrics"
    assert s.traces.protocol == "http/protobuf"
    assert s.traces.source == "OTEL_EXPORTER_OTLP_ENDPOINT"


def test_grpc_endpoint_is_used_as_given() -> None:
    s = load_settings(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "GRPC"}
    )
    assert s.traces is not None and s.traces.protocol == "grpc"
    assert s.traces.endpoint == "http://collector:4317"


def test_per_signal_settings_override_general_ones() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://general:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example/custom/path",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc,x-team=a",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "x-team=b",
    }
    s = load_settings(env)
    assert s.traces is not None and s.metrics is not None
    assert s.traces.endpoint == "https://traces.example/custom/path"  # exact, no /v1/traces
    assert s.traces.protocol == "http/protobuf"
    assert s.metrics.endpoint == "http://general:4318"  # grpc: no path appended
    assert s.metrics.protocol == "grpc"
    assert s.traces.headers_dict() == {"authorization": "Bearer abc", "x-team": "a"}
    assert s.metrics.headers_dict() == {"authorization": "Bearer abc", "x-team": "b"}


def test_options_win_over_environment() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_SERVICE_NAME": "env-svc",
        "OTEL_RESOURCE_ATTRIBUTES": "a=1",
        "OTEL_SDK_DISABLED": "true",
        "OTEL_METRIC_EXPORT_INTERVAL": "5000",
        "SENTRY_ENABLED": "true",
        "SENTRY_DSN": "https://k@env.example/1",
        "SENTRY_TRACES_SAMPLE_RATE": "0.1",
    }
    s = load_settings(
        env,
        otlp_endpoint="http://opt:4318",
        otlp_protocol="http/protobuf",
        otlp_headers={"X-Key": "v"},
        service_name="opt-svc",
        resource_attributes={"b": "2"},
        sdk_disabled=False,
        metric_export_interval_s=1.5,
        sentry_enabled=False,
        sentry_dsn="https://k@opt.example/2",
        sentry_traces_sample_rate=1.0,
        sentry_environment="prod",
    )
    assert s.traces is not None and s.traces.endpoint == "http://opt:4318/v1/traces"
    assert s.traces.protocol == "http/protobuf"
    assert s.traces.headers_dict() == {"x-key": "v"}
    assert s.resource_dict() == {"b": "2", "service.name": "opt-svc"}
    assert s.sdk_disabled is False
    assert s.metric_export_interval_s == 1.5
    assert s.sentry.enabled is False
    assert s.sentry.dsn == "https://k@opt.example/2"
    assert s.sentry.traces_sample_rate == 1.0
    assert s.sentry.environment == "prod"


def test_environment_values_parsed() -> None:
    s = load_settings(
        {
            "OTEL_SERVICE_NAME": " svc ",
            "OTEL_RESOURCE_ATTRIBUTES": "team=llm%20ops, region=eu ,service.name=ignored",
            "OTEL_METRIC_EXPORT_INTERVAL": "2500",
            "SENTRY_ENABLED": "yes",
            "SENTRY_DSN": "https://key@o1.ingest.sentry.io/123",
            "SENTRY_ENVIRONMENT": "staging",
            "SENTRY_TRACES_SAMPLE_RATE": "0.5",
        }
    )
    assert s.resource_dict() == {"team": "llm ops", "region": "eu", "service.name": "svc"}
    assert s.metric_export_interval_s == 2.5
    assert s.sentry.active and s.sentry.environment == "staging" and s.sentry.traces_sample_rate == 0.5


@pytest.mark.parametrize(
    ("raw", "disabled"), [("true", True), ("TRUE", True), ("false", False), ("", False), ("1", False)]
)
def test_sdk_disabled_follows_the_otel_rule(
    raw: str, disabled: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_model_health"):
        assert load_settings({"OTEL_SDK_DISABLED": raw}).sdk_disabled is disabled
    # A value that is neither true nor false is false, with a warning naming it.
    assert any("OTEL_SDK_DISABLED='1'" in r.getMessage() for r in caplog.records) is (raw == "1")


def test_breaker_mapping_and_critical_models() -> None:
    s = load_settings(
        {}, breaker={"open_wait_s": 5.0, "max_open_wait_s": 60.0}, critical_models="gpt-4o, openai/o3"
    )
    assert s.breaker.open_wait_s == 5.0 and s.breaker.max_open_wait_s == 60.0
    assert s.critical_models == ("gpt-4o", "openai/o3")


INVALID_ENV: list[tuple[dict[str, str], list[str]]] = [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, ["OTEL_EXPORTER_OTLP_ENDPOINT", "'collector:4318'"]),
    (
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://collector"},
        ["OTEL_EXPORTER_OTLP_ENDPOINT", "'ftp://collector'"],
    ),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:port"}, ["OTEL_EXPORTER_OTLP_ENDPOINT", "'http://c:port'"]),
    (
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://"},
        ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "'http://'"],
    ),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http"}, ["OTEL_EXPORTER_OTLP_PROTOCOL", "'http'", "http/protobuf"]),
    (
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
        ["OTEL_EXPORTER_OTLP_PROTOCOL", "'http/json'", "no Python"],
    ),
    ({"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "udp"}, ["OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "'udp'"]),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "a=1,secret-token"}, ["OTEL_EXPORTER_OTLP_HEADERS", "entry #2"]),
    ({"OTEL_RESOURCE_ATTRIBUTES": "a=1,=x"}, ["OTEL_RESOURCE_ATTRIBUTES", "'=x'"]),
    ({"OTEL_METRIC_EXPORT_INTERVAL": "-5"}, ["OTEL_METRIC_EXPORT_INTERVAL", "'-5'"]),
    ({"OTEL_METRIC_EXPORT_INTERVAL": "soon"}, ["OTEL_METRIC_EXPORT_INTERVAL", "'soon'"]),
    # 1e30 ms overflowed the metric reader's wait: its thread died and metrics silently stopped.
    ({"OTEL_METRIC_EXPORT_INTERVAL": "1e30"}, ["OTEL_METRIC_EXPORT_INTERVAL", "'1e30'", "2147483647"]),
    ({"OTEL_METRIC_EXPORT_INTERVAL": "0"}, ["OTEL_METRIC_EXPORT_INTERVAL", "'0'"]),
    ({"OTEL_METRIC_EXPORT_INTERVAL": "nan"}, ["OTEL_METRIC_EXPORT_INTERVAL", "'nan'"]),
    ({"OTEL_METRIC_EXPORT_INTERVAL": "inf"}, ["OTEL_METRIC_EXPORT_INTERVAL", "'inf'"]),
    ({"OTEL_METRIC_EXPORT_TIMEOUT": "-1"}, ["OTEL_METRIC_EXPORT_TIMEOUT", "'-1'", "milliseconds"]),
    ({"OTEL_METRIC_EXPORT_TIMEOUT": "1e30"}, ["OTEL_METRIC_EXPORT_TIMEOUT", "'1e30'"]),
    ({"OTEL_BSP_SCHEDULE_DELAY": "1e30"}, ["OTEL_BSP_SCHEDULE_DELAY", "'1e30'", "integer"]),
    ({"OTEL_BSP_SCHEDULE_DELAY": "-1"}, ["OTEL_BSP_SCHEDULE_DELAY", "'-1'"]),
    ({"OTEL_BSP_SCHEDULE_DELAY": "2.5"}, ["OTEL_BSP_SCHEDULE_DELAY", "'2.5'", "integer"]),
    ({"OTEL_BSP_MAX_QUEUE_SIZE": "0"}, ["OTEL_BSP_MAX_QUEUE_SIZE", "'0'"]),
    ({"OTEL_BSP_MAX_QUEUE_SIZE": "99999999999"}, ["OTEL_BSP_MAX_QUEUE_SIZE", "'99999999999'"]),
    ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "nan"}, ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "'nan'"]),
    (
        {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4096"},
        ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096", "OTEL_BSP_MAX_QUEUE_SIZE", "default 2048"],
    ),
    (
        {"OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "200"},
        ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "(200)", "OTEL_BSP_MAX_QUEUE_SIZE", "(100)"],
    ),
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": "-10"}, ["OTEL_EXPORTER_OTLP_TIMEOUT", "'-10'", "seconds"]),
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": "inf"}, ["OTEL_EXPORTER_OTLP_TIMEOUT", "'inf'"]),
    ({"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "NaN"}, ["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "'NaN'"]),
    ({"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "1e30"}, ["OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "'1e30'"]),
    ({"OTEL_TRACES_EXPORTER": "none,otlp"}, ["OTEL_TRACES_EXPORTER", "'none,otlp'"]),
    ({"OTEL_METRICS_EXPORTER": "otlp, NONE"}, ["OTEL_METRICS_EXPORTER", "'otlp, NONE'"]),
    ({"SENTRY_TRACES_SAMPLE_RATE": "20%"}, ["SENTRY_TRACES_SAMPLE_RATE", "'20%'"]),
    ({"SENTRY_TRACES_SAMPLE_RATE": "1.5"}, ["SENTRY_TRACES_SAMPLE_RATE", "'1.5'"]),
    ({"SENTRY_ENABLED": "ture"}, ["SENTRY_ENABLED", "'ture'"]),
    ({"SENTRY_DSN": "not-a-dsn"}, ["SENTRY_DSN", "'not-a-dsn'"]),
]


@pytest.mark.parametrize(("env", "expected"), INVALID_ENV)
def test_invalid_environment_names_variable_and_value(env: dict[str, str], expected: list[str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(env)
    message = str(info.value)
    for part in expected:
        assert part in message, message


def test_valid_sdk_numbers_are_accepted() -> None:
    s = load_settings(
        {
            "OTEL_METRIC_EXPORT_INTERVAL": "2147483647",
            "OTEL_METRIC_EXPORT_TIMEOUT": "0.5",
            "OTEL_BSP_SCHEDULE_DELAY": " 200 ",
            "OTEL_BSP_MAX_QUEUE_SIZE": "64",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "64",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2.5",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "",  # empty is unset, per the OTel spec
        }
    )
    assert s.metric_export_interval_s == 2147483.647


EXPORTER_SELECTION: list[tuple[dict[str, str], bool, bool]] = [
    # (extra environment, traces exporter, metrics exporter); every case has a general endpoint.
    ({}, True, True),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp"}, True, True),
    ({"OTEL_TRACES_EXPORTER": "none"}, False, True),
    ({"OTEL_METRICS_EXPORTER": " None "}, True, False),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}, False, False),
    ({"OTEL_TRACES_EXPORTER": "otlp,otlp"}, True, True),
    ({"OTEL_TRACES_EXPORTER": ""}, True, True),  # empty is unset: the default, otlp
    (
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/v1/traces"},
        False,
        True,
    ),
]


@pytest.mark.parametrize(("env", "traces", "metrics"), EXPORTER_SELECTION)
def test_exporter_selection_variables(env: dict[str, str], traces: bool, metrics: bool) -> None:
    s = load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", **env})
    assert (s.traces is not None, s.metrics is not None) == (traces, metrics)


def test_exporter_selection_none_yields_to_an_endpoint_option() -> None:
    # Options win over the environment: OTEL_TRACES_EXPORTER=none only turns off the variables' endpoints.
    s = load_settings(
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318"},
        otlp_traces_endpoint="http://opt:4318/v1/traces",
    )
    assert s.traces is not None and s.traces.endpoint == "http://opt:4318/v1/traces"


@pytest.mark.parametrize(
    ("name", "raw", "ignored", "traces"),
    [
        ("OTEL_TRACES_EXPORTER", "zipkin", "zipkin", True),  # ignored: the default, otlp, applies
        ("OTEL_TRACES_EXPORTER", "console,none", "console", False),
        ("OTEL_METRICS_EXPORTER", "prometheus,otlp", "prometheus", True),
        ("OTEL_LOGS_EXPORTER", "otlp,consol", "consol", True),
    ],
)
def test_unknown_exporter_values_are_ignored_with_a_warning(
    name: str, raw: str, ignored: str, traces: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # The OTel spec: an enum value the implementation does not recognise MUST be warned about and ignored.
    with caplog.at_level(logging.WARNING, logger="otel_model_health"):
        s = load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", name: raw})
    assert (s.traces is not None) is traces
    assert s.metrics is not None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and name in warnings[0] and f"{ignored} ignored" in warnings[0], warnings


def test_configure_refuses_an_overflowing_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "1e30")
    with pytest.raises(ConfigurationError, match=r"OTEL_METRIC_EXPORT_INTERVAL .*'1e30'"):
        omh.configure()


def test_header_values_are_never_shown() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings({"OTEL_EXPORTER_OTLP_HEADERS": "api-key-sk-live-123"})
    assert "sk-live" not in str(info.value)


INVALID_OPTIONS: list[tuple[dict[str, Any], list[str]]] = [
    ({"otlp_endpoint": "localhost:4318"}, ["option otlp_endpoint", "'localhost:4318'"]),
    ({"otlp_metrics_endpoint": "http//x"}, ["option otlp_metrics_endpoint", "'http//x'"]),
    ({"otlp_protocol": "thrift"}, ["option otlp_protocol", "'thrift'"]),
    ({"otlp_traces_protocol": "json"}, ["option otlp_traces_protocol", "'json'"]),
    ({"otlp_headers": {"x": 1}}, ["option otlp_headers", "'x'"]),
    ({"metric_export_interval_s": 0}, ["option metric_export_interval_s", "0"]),
    ({"metric_export_interval_s": -1.0}, ["option metric_export_interval_s", "-1.0"]),
    ({"metric_export_interval_s": float("nan")}, ["option metric_export_interval_s", "nan"]),
    ({"metric_export_interval_s": float("inf")}, ["option metric_export_interval_s", "inf"]),
    ({"metric_export_interval_s": 1e30}, ["option metric_export_interval_s", "1e+30"]),
    ({"metric_export_interval_s": "60"}, ["option metric_export_interval_s", "'60'"]),
    ({"max_keys": 0}, ["option max_keys", "0"]),
    ({"max_keys": "many"}, ["option max_keys", "'many'"]),
    ({"breaker": {"open_wait_s": -1}}, ["option breaker", "open_wait_s", "-1"]),
    ({"breaker": {"minimum_calls": 30}}, ["option breaker", "minimum_calls", "30"]),
    ({"breaker": {"open_wait_s": 60, "max_open_wait_s": 10}}, ["option breaker", "max_open_wait_s", "10"]),
    ({"breaker": {"failure_rate_threshold": 1.5}}, ["option breaker", "failure_rate_threshold", "1.5"]),
    ({"breaker": {"no_such": 1}}, ["option breaker", "no_such"]),
    ({"breaker": 3}, ["option breaker", "3"]),
    ({"sentry_traces_sample_rate": 2}, ["option sentry_traces_sample_rate", "'2'"]),
    ({"sentry_dsn": "nope"}, ["option sentry_dsn", "'nope'"]),
    ({"sentry_enabled": "yes"}, ["option sentry_enabled", "'yes'"]),
    ({"trace_url_template": "http://j/{trace}"}, ["option trace_url_template", "'http://j/{trace}'"]),
    ({"service_name": ""}, ["option service_name", "''"]),
    ({"capture_content": "on"}, ["option capture_content", "'on'"]),
    ({"set_global": None, "sdk_disabled": 1}, ["option sdk_disabled", "1"]),
    ({"critical_models": [1]}, ["option critical_models", "1"]),
]


@pytest.mark.parametrize(("options", "expected"), INVALID_OPTIONS)
def test_configure_rejects_invalid_options_with_one_message(
    options: dict[str, Any], expected: list[str]
) -> None:
    options = {k: v for k, v in options.items() if v is not None}
    with pytest.raises(ConfigurationError) as info:
        omh.configure(**options)
    message = str(info.value)
    for part in expected:
        assert part in message, message
    assert isinstance(info.value, ValueError)


def test_configure_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
    with pytest.raises(ConfigurationError, match=r"OTEL_EXPORTER_OTLP_PROTOCOL.*'carrier-pigeon'"):
        omh.configure()


def test_sentry_enabled_without_dsn_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sentry_sdk

    assert not sentry_sdk.is_initialized()
    monkeypatch.setenv("SENTRY_ENABLED", "true")
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    with pytest.raises(ConfigurationError, match="SENTRY_ENABLED is true but SENTRY_DSN"):
        omh.configure()
