"""Everything ``configure()`` needs, read once from keyword options and the environment, validated.

Options win over environment variables. Every invalid value fails here, at configure time, with one
``ConfigurationError`` naming the option or variable and the bad value, so a typo never turns into
telemetry that silently goes nowhere.

The OpenTelemetry variables follow the OpenTelemetry SDK environment specification: booleans are true
only for ``true`` (any case); ``OTEL_EXPORTER_OTLP_ENDPOINT`` is a base URL to which ``/v1/traces`` and
``/v1/metrics`` are appended for http/protobuf, while the per-signal endpoints are used as given;
``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` / ``OTEL_LOGS_EXPORTER`` select exporters, and a
value we do not know is ignored with a warning, as the spec requires of enum values. Numeric variables
are stricter than the spec (which says to ignore a bad one): a bad number fails start-up, here.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import unquote, urlsplit

from .health.types import BreakerConfig
from .sentry.settings import ENV_DSN, ENV_ENABLED, ENV_ENVIRONMENT, ENV_TRACES_SAMPLE_RATE, SentrySettings

logger: Final = logging.getLogger("otel_model_health")

Protocol = Literal["http/protobuf", "grpc"]
Signal = Literal["traces", "metrics"]

PROTOCOLS: Final[tuple[Protocol, ...]] = ("http/protobuf", "grpc")
DEFAULT_PROTOCOL: Final[Protocol] = "http/protobuf"
DEFAULT_MAX_KEYS: Final = 500
DEFAULT_METRIC_EXPORT_INTERVAL_S: Final = 60.0

ENV_SDK_DISABLED: Final = "OTEL_SDK_DISABLED"
ENV_SERVICE_NAME: Final = "OTEL_SERVICE_NAME"
ENV_RESOURCE_ATTRIBUTES: Final = "OTEL_RESOURCE_ATTRIBUTES"
ENV_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
ENV_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_PROTOCOL"
ENV_HEADERS: Final = "OTEL_EXPORTER_OTLP_HEADERS"
ENV_METRIC_EXPORT_INTERVAL: Final = "OTEL_METRIC_EXPORT_INTERVAL"  # milliseconds, per the OTel spec
ENV_TRACES_EXPORTER: Final = "OTEL_TRACES_EXPORTER"
ENV_METRICS_EXPORTER: Final = "OTEL_METRICS_EXPORTER"
ENV_LOGS_EXPORTER: Final = "OTEL_LOGS_EXPORTER"
ENV_BSP_MAX_QUEUE_SIZE: Final = "OTEL_BSP_MAX_QUEUE_SIZE"
ENV_BSP_MAX_EXPORT_BATCH_SIZE: Final = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"

# The largest number accepted in a numeric variable: the OTel spec's integer range, well below where a
# wait overflows threading's timeouts (OTEL_METRIC_EXPORT_INTERVAL=1e30 killed the metric reader's thread).
MAX_NUMBER: Final = 2**31 - 1
# Numeric variables the SDK and the OTLP exporters read themselves from the pipeline configure() builds:
# (name, integer only, unit). Checked here because the SDK falls back silently on some, raises deep
# inside on others, and accepts values that break export later. The Python OTLP exporters read their
# timeouts in seconds, not in the milliseconds of the spec.
SDK_NUMBERS: Final[tuple[tuple[str, bool, str], ...]] = (
    ("OTEL_METRIC_EXPORT_TIMEOUT", False, "milliseconds"),
    ("OTEL_BSP_SCHEDULE_DELAY", True, "milliseconds"),
    (ENV_BSP_MAX_QUEUE_SIZE, True, "spans"),
    (ENV_BSP_MAX_EXPORT_BATCH_SIZE, True, "spans"),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", False, "seconds"),
    ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", False, "seconds"),
    ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", False, "seconds"),
)
DEFAULT_BSP_MAX_QUEUE_SIZE: Final = 2048  # the SDK's


def signal_env(signal: Signal, what: Literal["ENDPOINT", "PROTOCOL", "HEADERS"]) -> str:
    """``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` and friends."""
    return f"OTEL_EXPORTER_OTLP_{signal.upper()}_{what}"


class ConfigurationError(ValueError):
    """An invalid option or environment variable, detected by ``configure()`` before anything starts."""


@dataclass(frozen=True, slots=True)
class OtlpSignalSettings:
    """Where and how one signal (traces or metrics) is exported."""

    signal: Signal
    endpoint: str  # the URL handed to the exporter (already suffixed with /v1/<signal> for http)
    protocol: Protocol
    headers: tuple[tuple[str, str], ...] = ()
    source: str = ""  # the option or variable the endpoint came from, for messages

    def headers_dict(self) -> dict[str, str]:
        return dict(self.headers)


@dataclass(frozen=True, slots=True)
class Settings:
    """The validated configuration of one ``configure()`` call."""

    sdk_disabled: bool = False
    service_name: str | None = None
    resource_attributes: tuple[tuple[str, str], ...] = ()
    traces: OtlpSignalSettings | None = None  # None: no span exporter
    metrics: OtlpSignalSettings | None = None  # None: no metric exporter
    metric_export_interval_s: float = DEFAULT_METRIC_EXPORT_INTERVAL_S
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    max_keys: int = DEFAULT_MAX_KEYS
    capture_content: bool | None = None
    critical_models: tuple[str, ...] = ()
    trace_url_template: str | None = None
    sentry: SentrySettings = field(default_factory=SentrySettings)
    set_global: bool = True

    def resource_dict(self) -> dict[str, str]:
        attributes = dict(self.resource_attributes)
        if self.service_name is not None:
            attributes["service.name"] = self.service_name  # OTEL_SERVICE_NAME wins, per the spec
        return attributes


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    sdk_disabled: bool | None = None,
    service_name: str | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    otlp_endpoint: str | None = None,
    otlp_protocol: str | None = None,
    otlp_headers: Mapping[str, str] | None = None,
    otlp_traces_endpoint: str | None = None,
    otlp_traces_protocol: str | None = None,
    otlp_traces_headers: Mapping[str, str] | None = None,
    otlp_metrics_endpoint: str | None = None,
    otlp_metrics_protocol: str | None = None,
    otlp_metrics_headers: Mapping[str, str] | None = None,
    metric_export_interval_s: float | None = None,
    breaker: BreakerConfig | Mapping[str, Any] | None = None,
    max_keys: int | None = None,
    capture_content: bool | None = None,
    critical_models: Iterable[str] | str | None = None,
    trace_url_template: str | None = None,
    sentry_enabled: bool | None = None,
    sentry_dsn: str | None = None,
    sentry_environment: str | None = None,
    sentry_traces_sample_rate: float | None = None,
    set_global: bool = True,
) -> Settings:
    """Merge options over ``environ`` (default ``os.environ``); a bad value raises ``ConfigurationError``."""
    env = os.environ if environ is None else environ

    disabled = (
        _check_bool("sdk_disabled", sdk_disabled)
        if sdk_disabled is not None
        else _otel_bool(ENV_SDK_DISABLED, env.get(ENV_SDK_DISABLED))
    )
    name = _service_name(service_name, env)
    resource = _resource_attributes(resource_attributes, env)

    traces = _signal("traces", env, otlp_endpoint, otlp_protocol, otlp_headers, otlp_traces_endpoint,
                     otlp_traces_protocol, otlp_traces_headers)  # fmt: skip
    metrics = _signal("metrics", env, otlp_endpoint, otlp_protocol, otlp_headers, otlp_metrics_endpoint,
                      otlp_metrics_protocol, otlp_metrics_headers)  # fmt: skip
    # configure() sets up no log pipeline: the variable is only checked, so a typo is still reported.
    _otlp_selected(ENV_LOGS_EXPORTER, env)
    _check_sdk_numbers(env)

    return Settings(
        sdk_disabled=disabled,
        service_name=name,
        resource_attributes=resource,
        traces=traces,
        metrics=metrics,
        metric_export_interval_s=_interval(metric_export_interval_s, env),
        breaker=_breaker(breaker),
        max_keys=_max_keys(max_keys),
        capture_content=None if capture_content is None else _check_bool("capture_content", capture_content),
        critical_models=_critical_models(critical_models),
        trace_url_template=_trace_url_template(trace_url_template),
        sentry=_sentry(env, sentry_enabled, sentry_dsn, sentry_environment, sentry_traces_sample_rate),
        set_global=_check_bool("set_global", set_global),
    )


# --- booleans ------------------------------------------------------------------------------------------


def _otel_bool(name: str, raw: str | None) -> bool:
    # The OTel spec: only "true" (case-insensitive) is true; anything else is false, with a warning.
    text = (raw or "").strip().lower()
    if text == "true":
        return True
    if text not in ("", "false"):
        logger.warning("%s=%r is not 'true' or 'false'; treated as false (OpenTelemetry rule)", name, raw)
    return False


def _check_bool(option: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"option {option} must be True or False, got {value!r}")
    return value


# --- resource ------------------------------------------------------------------------------------------


def _service_name(option: str | None, env: Mapping[str, str]) -> str | None:
    if option is not None:
        if not isinstance(option, str) or not option.strip():
            raise ConfigurationError(f"option service_name must be a non-empty string, got {option!r}")
        return option.strip()
    return (env.get(ENV_SERVICE_NAME) or "").strip() or None


def _resource_attributes(
    option: Mapping[str, str] | None, env: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    if option is not None:
        if not isinstance(option, Mapping):
            raise ConfigurationError(f"option resource_attributes must be a mapping, got {option!r}")
        pairs = []
        for key, value in option.items():
            if not isinstance(key, str) or not key.strip():
                raise ConfigurationError(
                    f"option resource_attributes has an empty or non-string key: {key!r}"
                )
            pairs.append((key.strip(), str(value)))
        return tuple(pairs)
    raw = env.get(ENV_RESOURCE_ATTRIBUTES) or ""
    # Values are not secret: the bad entry is shown in full.
    return tuple(_parse_pairs(ENV_RESOURCE_ATTRIBUTES, raw, show_values=True))


def _parse_pairs(name: str, raw: str, *, show_values: bool) -> list[tuple[str, str]]:
    """``k1=v1,k2=v2`` with percent-encoded values (the OTel list format)."""
    pairs: list[tuple[str, str]] = []
    for index, item in enumerate(raw.split(","), start=1):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            shown = repr(item) if show_values else "(not shown: headers often carry credentials)"
            raise ConfigurationError(f"{name}: entry #{index} is not key=value: {shown}")
        pairs.append((unquote(key.strip()), unquote(value.strip())))
    return pairs


# --- OTLP ----------------------------------------------------------------------------------------------


def _signal(
    signal: Signal,
    env: Mapping[str, str],
    endpoint_option: str | None,
    protocol_option: str | None,
    headers_option: Mapping[str, str] | None,
    signal_endpoint_option: str | None,
    signal_protocol_option: str | None,
    signal_headers_option: Mapping[str, str] | None,
) -> OtlpSignalSettings | None:
    prefix = f"otlp_{signal}_"
    protocol = _protocol(signal, env, protocol_option, signal_protocol_option)
    headers = _headers(signal, env, headers_option, signal_headers_option)
    # OTEL_<SIGNAL>_EXPORTER=none turns off the endpoints of the environment; an option still wins.
    from_env = _otlp_selected(ENV_TRACES_EXPORTER if signal == "traces" else ENV_METRICS_EXPORTER, env)

    # The most specific source wins: signal option, signal variable, general option, general variable.
    candidates: list[tuple[str | None, str, bool, bool]] = [
        (signal_endpoint_option, f"option {prefix}endpoint", True, True),
        (env.get(signal_env(signal, "ENDPOINT")), signal_env(signal, "ENDPOINT"), True, from_env),
        (endpoint_option, "option otlp_endpoint", False, True),
        (env.get(ENV_ENDPOINT), ENV_ENDPOINT, False, from_env),
    ]
    for raw, source, exact, allowed in candidates:
        if not allowed or raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        url = _check_url(source, raw)
        if protocol == "http/protobuf" and not exact:
            url = url.rstrip("/") + f"/v1/{signal}"
        return OtlpSignalSettings(
            signal=signal, endpoint=url, protocol=protocol, headers=headers, source=source
        )
    return None


def _protocol(
    signal: Signal, env: Mapping[str, str], general_option: str | None, signal_option: str | None
) -> Protocol:
    candidates = [
        (signal_option, f"option otlp_{signal}_protocol"),
        (env.get(signal_env(signal, "PROTOCOL")), signal_env(signal, "PROTOCOL")),
        (general_option, "option otlp_protocol"),
        (env.get(ENV_PROTOCOL), ENV_PROTOCOL),
    ]
    for raw, source in candidates:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        text = raw.strip().lower() if isinstance(raw, str) else raw
        if text == "grpc":
            return "grpc"
        if text == "http/protobuf":
            return "http/protobuf"
        hint = " (http/json has no Python exporter)" if text == "http/json" else ""
        raise ConfigurationError(f"{source} must be 'http/protobuf' or 'grpc', got {raw!r}{hint}")
    return DEFAULT_PROTOCOL


def _headers(
    signal: Signal,
    env: Mapping[str, str],
    general_option: Mapping[str, str] | None,
    signal_option: Mapping[str, str] | None,
) -> tuple[tuple[str, str], ...]:
    merged: dict[str, str] = {}
    # Least specific first, so the signal's own headers override the general ones key by key.
    sources: list[tuple[str, Mapping[str, str] | str | None]] = [
        (ENV_HEADERS, env.get(ENV_HEADERS)),
        ("option otlp_headers", general_option),
        (signal_env(signal, "HEADERS"), env.get(signal_env(signal, "HEADERS"))),
        (f"option otlp_{signal}_headers", signal_option),
    ]
    for source, value in sources:
        if value is None:
            continue
        if isinstance(value, str):
            pairs = _parse_pairs(source, value, show_values=False)
        elif isinstance(value, Mapping):
            pairs = []
            for key, item in value.items():
                if not isinstance(key, str) or not key.strip() or not isinstance(item, str):
                    raise ConfigurationError(
                        f"{source} must map non-empty header names to strings; bad entry for key {key!r}"
                    )
                pairs.append((key.strip(), item))
        else:
            raise ConfigurationError(f"{source} must be a mapping of header names to values")
        for key, item in pairs:
            # gRPC metadata keys must be lower case; HTTP header names are case-insensitive anyway.
            merged[key.lower()] = item
    return tuple(merged.items())


def _check_url(source: str, raw: object) -> str:
    if not isinstance(raw, str):
        raise ConfigurationError(f"{source} must be a URL string, got {raw!r}")
    text = raw.strip()
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a non-numeric or out-of-range port
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise ConfigurationError(
            f"{source} must be an http:// or https:// URL with a host (e.g. http://host:4318), got {raw!r}"
        )
    return text


def _otlp_selected(name: str, env: Mapping[str, str]) -> bool:
    """Whether ``OTEL_<SIGNAL>_EXPORTER`` (a comma list, default ``otlp``) selects OTLP export.

    ``none`` selects no exporter. Other values (``console``, ``zipkin``, ``prometheus``, typos) have no
    exporter here: each is ignored with a warning, as the OTel spec requires of an unknown enum value.
    """
    raw = env.get(name) or ""
    names = {item.strip().lower() for item in raw.split(",") if item.strip()}
    unknown = names - {"otlp", "none"}
    if unknown:
        logger.warning(
            "%s=%r: %s ignored (otel_model_health supports only 'otlp' and 'none')",
            name,
            raw,
            ", ".join(sorted(unknown)),
        )
    names -= unknown
    if names == {"otlp", "none"}:
        raise ConfigurationError(f"{name}: 'none' cannot be combined with 'otlp', got {raw!r}")
    return names != {"none"}


def _number(source: str, raw: object, *, integer: bool, unit: str, text: bool = True) -> float:
    """A positive number no larger than ``MAX_NUMBER``; anything else raises, naming ``source``.

    ``text``: parse a string (a variable's value); an option must be a number already.
    """
    value = math.nan
    if isinstance(raw, str) and text:
        with contextlib.suppress(ValueError):
            value = int(raw.strip()) if integer else float(raw)
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = raw
    if not 0 < value <= MAX_NUMBER:  # also rejects NaN and infinities
        kind = "integer" if integer else "number"
        raise ConfigurationError(
            f"{source} must be a positive {kind} of {unit}, at most {MAX_NUMBER}, got {raw!r}"
        )
    return float(value)


def _check_sdk_numbers(env: Mapping[str, str]) -> None:
    for name, integer, unit in SDK_NUMBERS:
        raw = env.get(name) or ""
        if raw.strip():
            _number(name, raw, integer=integer, unit=unit)
    queue = env.get(ENV_BSP_MAX_QUEUE_SIZE) or ""
    batch = env.get(ENV_BSP_MAX_EXPORT_BATCH_SIZE) or ""
    if batch.strip() and int(batch) > (int(queue) if queue.strip() else DEFAULT_BSP_MAX_QUEUE_SIZE):
        # The SDK's BatchSpanProcessor would raise this from inside configure().
        raise ConfigurationError(
            f"{ENV_BSP_MAX_EXPORT_BATCH_SIZE} ({batch.strip()}) must not exceed {ENV_BSP_MAX_QUEUE_SIZE} "
            f"({queue.strip() or f'default {DEFAULT_BSP_MAX_QUEUE_SIZE}'})"
        )


def _interval(option: float | None, env: Mapping[str, str]) -> float:
    if option is not None:
        return _number("option metric_export_interval_s", option, integer=False, unit="seconds", text=False)
    raw = (env.get(ENV_METRIC_EXPORT_INTERVAL) or "").strip()
    if not raw:
        return DEFAULT_METRIC_EXPORT_INTERVAL_S
    return _number(ENV_METRIC_EXPORT_INTERVAL, raw, integer=False, unit="milliseconds") / 1000.0


# --- health ----------------------------------------------------------------------------------------------


def _breaker(option: BreakerConfig | Mapping[str, Any] | None) -> BreakerConfig:
    if option is None:
        return BreakerConfig()
    if isinstance(option, BreakerConfig):
        return option
    if isinstance(option, Mapping):
        try:
            return BreakerConfig(**option)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"option breaker: {exc}") from None
    raise ConfigurationError(f"option breaker must be a BreakerConfig or a mapping, got {option!r}")


def _max_keys(option: int | None) -> int:
    if option is None:
        return DEFAULT_MAX_KEYS
    if isinstance(option, bool) or not isinstance(option, int) or option < 1:
        raise ConfigurationError(f"option max_keys must be an integer >= 1, got {option!r}")
    return option


def _critical_models(option: Iterable[str] | str | None) -> tuple[str, ...]:
    if option is None:
        return ()
    items = option.split(",") if isinstance(option, str) else list(option)
    models = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError(f"option critical_models must hold strings, got {item!r}")
        if item.strip():
            models.append(item.strip())
    return tuple(models)


def _trace_url_template(option: str | None) -> str | None:
    if option is None:
        return None
    allowed = {"trace_id", "span_id"}
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(option) if name is not None}
        ok = isinstance(option, str) and names <= allowed
    except (ValueError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise ConfigurationError(
            f"option trace_url_template may only use {{trace_id}} and {{span_id}}, got {option!r}"
        )
    return option


# --- Sentry ----------------------------------------------------------------------------------------------


def _sentry(
    env: Mapping[str, str],
    enabled: bool | None,
    dsn: str | None,
    environment: str | None,
    traces_sample_rate: float | None,
) -> SentrySettings:
    try:
        base = SentrySettings.from_env(env)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    # Options are validated by the same parser, through a one-variable environment, and the message is
    # rewritten to name the option rather than the variable.
    overrides: dict[str, Any] = {}
    checks: list[tuple[str, str, object, str, Callable[[SentrySettings], object]]] = [
        ("sentry_enabled", ENV_ENABLED, enabled, "enabled", lambda s: s.enabled),
        ("sentry_dsn", ENV_DSN, dsn, "dsn", lambda s: s.dsn),
        ("sentry_environment", ENV_ENVIRONMENT, environment, "environment", lambda s: s.environment),
        ("sentry_traces_sample_rate", ENV_TRACES_SAMPLE_RATE, traces_sample_rate, "traces_sample_rate",
         lambda s: s.traces_sample_rate),
    ]  # fmt: skip
    for option, variable, value, attribute, read in checks:
        if value is None:
            continue
        if option == "sentry_enabled":
            overrides[attribute] = _check_bool(option, value)
            continue
        if isinstance(value, bool):
            raise ConfigurationError(f"option {option}: unexpected boolean {value!r}")
        try:
            parsed = SentrySettings.from_env({variable: str(value)})
        except ValueError as exc:
            raise ConfigurationError(str(exc).replace(variable, f"option {option}", 1)) from None
        overrides[attribute] = read(parsed)
    return SentrySettings(
        enabled=overrides.get("enabled", base.enabled),
        dsn=overrides.get("dsn", base.dsn),
        environment=overrides.get("environment", base.environment),
        traces_sample_rate=overrides.get("traces_sample_rate", base.traces_sample_rate),
    )


__all__ = [
    "ConfigurationError",
    "OtlpSignalSettings",
    "Settings",
    "load_settings",
]
