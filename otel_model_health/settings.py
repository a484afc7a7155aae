"""Everything ``configure()`` needs, read once from its options and the environment, validated.

``options.py`` declares the options and reads each one; this module assembles the ``Settings`` of one
call: an option named like a ``Settings`` field lands there as read, the OTLP options become one
``OtlpSignalSettings`` per signal, the Sentry ones a ``SentrySettings``. It also checks the variables
that have no option but break export when wrong: the exporter selection and the SDK's numbers.

Options win over environment variables. Every invalid value fails here, at configure time, with one
``ConfigurationError`` naming the option or variable and the bad value, so a typo never turns into
telemetry that silently goes nowhere. ``OTEL_EXPORTER_OTLP_ENDPOINT`` is a base URL to which
``/v1/traces`` and ``/v1/metrics`` are appended for http/protobuf, while the per-signal endpoints are
used as given; ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` / ``OTEL_LOGS_EXPORTER`` select
exporters, and a value we do not know is ignored with a warning, as the spec requires of enum values.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal

from .health.types import BreakerConfig
from .option_values import ConfigurationError, Pairs, Protocol, number
from .options import Given, Options, read_options, variable_of
from .sentry.settings import SentrySettings
from .slo.definition import SLO

logger: Final = logging.getLogger("otel_model_health")

Signal = Literal["traces", "metrics"]

DEFAULT_PROTOCOL: Final[Protocol] = "http/protobuf"
DEFAULT_MAX_KEYS: Final = 500
DEFAULT_METRIC_EXPORT_INTERVAL_S: Final = 60.0
DEFAULT_HEALTH_HTTP_HOST: Final = "127.0.0.1"

ENV_ENDPOINT: Final = variable_of("otlp_endpoint")
ENV_TRACES_EXPORTER: Final = "OTEL_TRACES_EXPORTER"
ENV_METRICS_EXPORTER: Final = "OTEL_METRICS_EXPORTER"
ENV_LOGS_EXPORTER: Final = "OTEL_LOGS_EXPORTER"
ENV_BSP_MAX_QUEUE_SIZE: Final = "OTEL_BSP_MAX_QUEUE_SIZE"
ENV_BSP_MAX_EXPORT_BATCH_SIZE: Final = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"

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
    return variable_of(f"otlp_{signal}_{what.lower()}")


@dataclass(frozen=True, slots=True)
class OtlpSignalSettings:
    """Where and how one signal (traces or metrics) is exported."""

    signal: Signal
    endpoint: str  # the URL handed to the exporter (already suffixed with /v1/<signal> for http)
    protocol: Protocol
    headers: Pairs = ()
    source: str = ""  # the option or variable the endpoint came from, for messages

    def headers_dict(self) -> dict[str, str]:
        return dict(self.headers)


@dataclass(frozen=True, slots=True)
class Settings:
    """The validated configuration of one ``configure()`` call."""

    sdk_disabled: bool = False
    service_name: str | None = None
    resource_attributes: Pairs = ()
    traces: OtlpSignalSettings | None = None  # None: no span exporter
    metrics: OtlpSignalSettings | None = None  # None: no metric exporter
    metric_export_interval_s: float = DEFAULT_METRIC_EXPORT_INTERVAL_S
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    max_keys: int = DEFAULT_MAX_KEYS
    store: Any = None  # a Redis URL or a RedisStore: health shared by the fleet (docs/fleet.md)
    slos: tuple[SLO, ...] = ()
    capture_content: bool | None = None
    health_http_port: int | None = None  # None: no /health server
    health_http_host: str = DEFAULT_HEALTH_HTTP_HOST
    enforce: bool | None = None
    critical_models: tuple[str, ...] = ()
    trace_url_template: str | None = None
    sentry: SentrySettings = field(default_factory=SentrySettings)
    set_global: bool = True

    def resource_dict(self) -> dict[str, str]:
        attributes = dict(self.resource_attributes)
        if self.service_name is not None:
            attributes["service.name"] = self.service_name  # OTEL_SERVICE_NAME wins, per the spec
        return attributes


_SETTINGS_FIELDS: Final = frozenset(f.name for f in fields(Settings))


def load_settings(environ: Mapping[str, str] | None = None, **options: Any) -> Settings:
    """Merge ``options`` (``configure()``'s) over ``environ`` (default ``os.environ``)."""
    return read_settings(Options(**options), environ)


def read_settings(
    options: Options, environ: Mapping[str, str] | None = None, *, app_exports: bool = False
) -> Settings:
    """The settings of ``options`` over ``environ``; a bad value raises ``ConfigurationError``.

    ``app_exports``: the app's own SDK set-up (a distro under ``opentelemetry-instrument``) exports, and
    reads ``OTEL_*_EXPORTER`` itself, so exporter names we have no exporter for are not ours to warn
    about."""
    env = os.environ if environ is None else environ
    given = read_options(options, env)
    traces = _signal("traces", given, env, app_exports)
    metrics = _signal("metrics", given, env, app_exports)
    # configure() sets up no log pipeline: the variable is only checked, so a typo is still reported.
    _otlp_selected(ENV_LOGS_EXPORTER, env, app_exports)
    _check_sdk_numbers(env)
    as_read = {
        name: read.value
        for name, read in given.items()
        if name in _SETTINGS_FIELDS and read.value is not None
    }
    return Settings(traces=traces, metrics=metrics, sentry=SentrySettings.of(given), **as_read)


# --- OTLP ----------------------------------------------------------------------------------------------


def _signal(
    signal: Signal, given: Mapping[str, Given], env: Mapping[str, str], quiet: bool
) -> OtlpSignalSettings | None:
    own = f"otlp_{signal}_"
    protocol: Protocol = given[own + "protocol"].value or given["otlp_protocol"].value or DEFAULT_PROTOCOL
    headers: dict[str, str] = {}
    # Least specific first, so the signal's own headers override the general ones key by key.
    for read in (given["otlp_headers"], given[own + "headers"]):
        for pairs in (read.env, read.option):
            for key, value in pairs or ():
                headers[key.lower()] = value  # gRPC metadata keys must be lower case
    # OTEL_<SIGNAL>_EXPORTER=none turns off the endpoints of the environment; an option still wins.
    from_env_allowed = _otlp_selected(
        ENV_TRACES_EXPORTER if signal == "traces" else ENV_METRICS_EXPORTER, env, quiet
    )
    # The most specific source wins: signal option, signal variable, general option, general variable.
    for read, exact in ((given[own + "endpoint"], True), (given["otlp_endpoint"], False)):
        for url, source, from_env in read.sources():
            if from_env and not from_env_allowed:
                continue
            endpoint = url if exact or protocol != "http/protobuf" else url.rstrip("/") + f"/v1/{signal}"
            return OtlpSignalSettings(
                signal=signal,
                endpoint=endpoint,
                protocol=protocol,
                headers=tuple(headers.items()),
                source=source,
            )
    return None


def _otlp_selected(name: str, env: Mapping[str, str], quiet: bool = False) -> bool:
    """Whether ``OTEL_<SIGNAL>_EXPORTER`` (a comma list, default ``otlp``) selects OTLP export.

    ``none`` selects no exporter. Other values (``console``, ``zipkin``, ``prometheus``, typos) have no
    exporter here: each is ignored with a warning, as the OTel spec requires of an unknown enum value.
    """
    raw = env.get(name) or ""
    names = {item.strip().lower() for item in raw.split(",") if item.strip()}
    unknown = names - {"otlp", "none"}
    if unknown and not quiet:
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


def _check_sdk_numbers(env: Mapping[str, str]) -> None:
    for name, integer, unit in SDK_NUMBERS:
        raw = env.get(name) or ""
        if raw.strip():
            number(name, raw, integer=integer, unit=unit)
    queue = env.get(ENV_BSP_MAX_QUEUE_SIZE) or ""
    batch = env.get(ENV_BSP_MAX_EXPORT_BATCH_SIZE) or ""
    if batch.strip() and int(batch) > (int(queue) if queue.strip() else DEFAULT_BSP_MAX_QUEUE_SIZE):
        # The SDK's BatchSpanProcessor would raise this from inside configure().
        raise ConfigurationError(
            f"{ENV_BSP_MAX_EXPORT_BATCH_SIZE} ({batch.strip()}) must not exceed {ENV_BSP_MAX_QUEUE_SIZE} "
            f"({queue.strip() or f'default {DEFAULT_BSP_MAX_QUEUE_SIZE}'})"
        )


__all__ = [
    "ConfigurationError",
    "OtlpSignalSettings",
    "Settings",
    "load_settings",
    "read_settings",
]
