"""``configure()``'s options, declared once.

``Options`` is the one declaration. Each field is an option: its type is what ``configure()`` accepts
(None: not given), and its ``Option`` says which environment variable it falls back to, which function
checks a value passed as the option and which parses the variable, and how docs/configuration.md
documents it. From it come ``configure()``'s keyword signature (``keywords_of``), the reading of the
options and variables (``read_options``), and the option tables of docs/configuration.md (generated; a
test fails when they differ). Adding an option is adding a field here; ``settings.py`` assembles what
needs more than one option (OTLP endpoints, Sentry).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, ParamSpec, TypeVar

from . import option_values as v

if TYPE_CHECKING:
    from opentelemetry import metrics, trace

    from .health.fleet import RedisStore
    from .health.types import BreakerConfig
    from .outcomes import CallClassifier
    from .slo.definition import SLO

P = ParamSpec("P")
R = TypeVar("R")

Section = Literal["OpenTelemetry", "Health", "Sentry", "Providers"]
SECTIONS: Final[tuple[Section, ...]] = ("OpenTelemetry", "Health", "Sentry", "Providers")


@dataclass(frozen=True, slots=True)
class Option:
    """How one option is checked, read from its environment variable, and documented."""

    section: Section
    doc: str  # the "meaning" cell of its docs table (Markdown)
    default: str  # what applies when neither the option nor the variable is set, as the docs say it
    check: Callable[[str, Any], object]  # (source, value passed) -> the value used; None: not given
    env: str | None = None
    parse: Callable[[str, str], object] | None = None  # (variable, its text) -> the value; None: unset


def _option(
    section: Section,
    doc: str,
    *,
    check: Callable[[str, Any], object],
    env: str | None = None,
    parse: Callable[[str, str], object] | None = None,
    default: str = "none",
    value: object = None,
) -> Any:
    """A dataclass field whose metadata is its ``Option``; typed Any so mypy reads it as a plain default.

    Without ``parse``, a variable's text is checked as the option's value is.
    """
    if env is not None and parse is None:
        parse = check
    return field(default=value, metadata={"option": Option(section, doc, default, check, env, parse)})


_OTEL: Final = "OpenTelemetry"
_MERGED: Final = "Merged over the general headers, key by key."


@dataclass(frozen=True, kw_only=True, slots=True)
class Options:
    """The keyword options of ``configure()``; every one overrides its environment variable."""

    sdk_disabled: bool | None = _option(
        _OTEL,
        "Create no providers or exporters; health still works. Per the OTel spec, only `true` (any case) "
        "counts as true. Any other value counts as false and logs a warning.",
        default="`false`",
        env="OTEL_SDK_DISABLED",
        check=v.check_bool,
        parse=v.otel_bool,
    )
    service_name: str | None = _option(
        _OTEL,
        "Resource `service.name`. Takes priority over a `service.name` in the resource attributes.",
        default="SDK default `unknown_service`",
        env="OTEL_SERVICE_NAME",
        check=v.check_name,
        parse=v.text,
    )
    resource_attributes: Mapping[str, str] | None = _option(
        _OTEL,
        "Extra resource attributes: a mapping. The variable is `k1=v1,k2=v2` with percent-encoded values.",
        env="OTEL_RESOURCE_ATTRIBUTES",
        check=v.check_attributes,
        parse=v.parse_attributes,
    )
    otlp_endpoint: str | None = _option(
        _OTEL,
        "Base URL for both signals. For http/protobuf, `/v1/traces` or `/v1/metrics` is appended. For "
        "gRPC, the URL is used as given (`http://` means an insecure channel).",
        default="none: no exporter",
        env="OTEL_EXPORTER_OTLP_ENDPOINT",
        check=v.check_url,
    )
    otlp_traces_endpoint: str | None = _option(
        _OTEL,
        "Traces URL, used exactly as given (include `/v1/traces` for http).",
        default="the base endpoint",
        env="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        check=v.check_url,
    )
    otlp_metrics_endpoint: str | None = _option(
        _OTEL,
        "Metrics URL, used exactly as given.",
        default="the base endpoint",
        env="OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        check=v.check_url,
    )
    otlp_protocol: str | None = _option(
        _OTEL,
        "`http/protobuf` or `grpc`. `http/json` is rejected because Python has no exporter for it.",
        default="`http/protobuf`",
        env="OTEL_EXPORTER_OTLP_PROTOCOL",
        check=v.check_protocol,
    )
    otlp_traces_protocol: str | None = _option(
        _OTEL,
        "Protocol for traces only.",
        default="the general protocol",
        env="OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        check=v.check_protocol,
    )
    otlp_metrics_protocol: str | None = _option(
        _OTEL,
        "Protocol for metrics only.",
        default="the general protocol",
        env="OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        check=v.check_protocol,
    )
    otlp_headers: Mapping[str, str] | None = _option(
        _OTEL,
        'Headers on every export: a mapping, e.g. `{"authorization": "Bearer xyz"}`; the variable is '
        "`authorization=Bearer%20xyz`. Names are lower-cased, as gRPC requires. The option is merged "
        "over the variable, key by key.",
        env="OTEL_EXPORTER_OTLP_HEADERS",
        check=v.check_headers,
        parse=v.parse_headers,
    )
    otlp_traces_headers: Mapping[str, str] | None = _option(
        _OTEL,
        _MERGED,
        env="OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        check=v.check_headers,
        parse=v.parse_headers,
    )
    otlp_metrics_headers: Mapping[str, str] | None = _option(
        _OTEL,
        _MERGED,
        env="OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        check=v.check_headers,
        parse=v.parse_headers,
    )
    metric_export_interval_s: float | None = _option(
        _OTEL,
        "How often the created meter provider exports. A positive number, at most 2³¹−1: seconds for "
        "the option, **milliseconds** for the variable (the OTel spec's unit).",
        default="60 s",
        env="OTEL_METRIC_EXPORT_INTERVAL",
        check=v.check_seconds,
        parse=v.parse_milliseconds_as_s,
    )
    breaker: BreakerConfig | Mapping[str, Any] | None = _option(
        "Health",
        "Breaker and status thresholds: a `BreakerConfig`, or a mapping of its fields "
        '(`{"open_wait_s": 10}`). Negative or inconsistent values are rejected, e.g. `minimum_calls` '
        "above `window_size`, or `max_open_wait_s` below `open_wait_s`. See docs/health-model.md. The "
        "variable lists fields as `k=v` pairs: `open_wait_s=10,minimum_calls=3`.",
        default="`BreakerConfig()`",
        env="MODEL_HEALTH_BREAKER",
        check=v.check_breaker,
        parse=v.parse_breaker,
    )
    max_keys: int | None = _option(
        "Health",
        "Most (provider, model, gateway) keys tracked. Past this, the least recently recorded key is "
        "evicted (counted in `model_health.registry.evictions`).",
        default="`500`",
        check=v.check_max_keys,
    )
    store: RedisStore | str | None = _option(
        "Health",
        "Share health with every process that uses the same Redis or Valkey: a `redis://`, `rediss://` or "
        "`unix://` URL, or a `RedisStore` (its prefix and timeouts). Keys are under "
        "`model_health:{service.name}:`. Needs `otel_model_health[redis]`. See docs/fleet.md.",
        default="none: each process on its own",
        env="MODEL_HEALTH_REDIS_URL",
        check=v.check_store,
        parse=v.parse_redis_url,
    )
    slos: Iterable[SLO | Mapping[str, Any]] | str | None = _option(
        "Health",
        "Service level objectives per model: `SLO` values or mappings of their fields, or the path of a "
        "TOML (`[[slo]]` tables) or JSON file of them. The variable names such a file. See docs/slo.md.",
        env="MODEL_HEALTH_SLO_FILE",
        check=v.check_slos,
        parse=v.parse_slo_file,
        default="none",
    )
    capture_content: bool | None = _option(
        "Health",
        "Record prompts and completions on spans. Without the option, "
        "`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` decides: it is read on first use and again "
        "after each `configure()`.",
        default="off",
        check=v.check_bool,
    )
    health_http_port: int | None = _option(
        "Health",
        "Serve `/health` (the `health_asgi_app` documents) from a daemon thread on this port, for apps "
        "with no web framework to mount it in (zero-code: docs/zero-code.md). `0` picks a free port.",
        default="off",
        env="MODEL_HEALTH_HTTP_PORT",
        check=v.check_port,
        parse=v.parse_port,
    )
    health_http_host: str | None = _option(
        "Health",
        "The address the `/health` server binds. Only loopback unless set: `0.0.0.0` exposes it.",
        default="`127.0.0.1`",
        env="MODEL_HEALTH_HTTP_HOST",
        check=v.check_host,
        parse=v.parse_host,
    )
    enforce: bool | None = _option(
        "Health",
        "Refuse calls to a model whose breaker is OPEN, whose HALF_OPEN trial slots are taken, or that is "
        "rate-limited, before any network I/O; the default of the transports and decorators given no "
        "`enforce`. The variable accepts `true/false/1/0/yes/no/on/off`. See docs/enforcement.md.",
        default="`false`: passive",
        env="MODEL_HEALTH_ENFORCE",
        check=v.check_bool,
        parse=v.lenient_bool,
    )
    call_classifier: CallClassifier | None = _option(
        "Health",
        "Replaces how our instrumentation turns a call's result into an outcome.",
        default="built-in table (docs/outcomes.md)",
        check=v.check_callable,
    )
    sentry_enabled: bool | None = _option(
        "Sentry",
        "Install the Sentry bridge. The variable accepts `true/false/1/0/yes/no/on/off`; anything else "
        "is an error.",
        default="`false`",
        env="SENTRY_ENABLED",
        check=v.check_bool,
        parse=v.lenient_bool,
    )
    sentry_dsn: str | None = _option(
        "Sentry",
        "DSN used when `configure()` initialises Sentry. It must look like `https://<key>@<host>/<project>`.",
        env="SENTRY_DSN",
        check=v.as_text(v.parse_dsn),
        parse=v.parse_dsn,
    )
    sentry_environment: str | None = _option(
        "Sentry",
        "Passed to `sentry_sdk.init`.",
        env="SENTRY_ENVIRONMENT",
        check=v.as_text(v.text),
        parse=v.text,
    )
    sentry_traces_sample_rate: float | None = _option(
        "Sentry",
        "A number in [0, 1], passed to `sentry_sdk.init`.",
        env="SENTRY_TRACES_SAMPLE_RATE",
        check=v.as_text(v.parse_rate),
        parse=v.parse_rate,
    )
    critical_models: Iterable[str] | str | None = _option(
        "Sentry",
        "Model ids (`gpt-4o`) or `provider/model` pairs, as a list or a comma-separated string. Their "
        "Sentry events are one level higher.",
        check=v.check_models,
    )
    trace_url_template: str | None = _option(
        "Sentry",
        "Link to the causing trace in each event, e.g. `http://localhost:16686/trace/{trace_id}`. Only "
        "`{trace_id}` and `{span_id}` are allowed.",
        check=v.check_trace_url_template,
    )
    tracer_provider: trace.TracerProvider | None = _option(
        "Providers",
        "Use this tracer provider instead of the global. It counts as app-owned.",
        default="the global one",
        check=v.as_given,
    )
    meter_provider: metrics.MeterProvider | None = _option(
        "Providers",
        "Use this meter provider instead of the global. It counts as app-owned.",
        default="the global one",
        check=v.as_given,
    )
    set_global: bool = _option(
        "Providers",
        "Install the providers `configure()` creates as the global OpenTelemetry providers. With "
        "`False`, only this library uses them.",
        default="`True`",
        value=True,
        check=v.check_bool,
    )


OPTIONS: Final[Mapping[str, Option]] = {f.name: f.metadata["option"] for f in fields(Options)}


def variable_of(name: str) -> str:
    """The environment variable of option ``name``."""
    env = OPTIONS[name].env
    if env is None:
        raise KeyError(f"option {name} has no environment variable")
    return env


# --- reading -------------------------------------------------------------------------------------------


class Given(NamedTuple):
    """One option, read: its checked value and its variable's parsed value, each None when not set."""

    name: str
    option: Any
    env: Any
    variable: str | None

    @property
    def value(self) -> Any:
        """The option wins over the variable."""
        return self.env if self.option is None else self.option

    def sources(self) -> Iterator[tuple[Any, str, bool]]:
        """(value, where it came from, from the environment), the option first; only what is set."""
        if self.option is not None:
            yield self.option, f"option {self.name}", False
        if self.env is not None and self.variable is not None:
            yield self.env, self.variable, True


def read_options(
    options: Options, environ: Mapping[str, str], section: Section | None = None
) -> dict[str, Given]:
    """Check every option given and parse every variable set; the first bad value raises.

    A variable is checked even when its option overrides it: the OTLP exporters and sentry-sdk read
    some of these variables themselves, so a bad value is a mistake whoever reads it.
    """
    given: dict[str, Given] = {}
    for name, spec in OPTIONS.items():
        if section is not None and spec.section != section:
            continue
        value = getattr(options, name)
        checked = None if value is None else spec.check(f"option {name}", value)
        raw = None if spec.env is None else environ.get(spec.env)
        parsed = None if raw is None or spec.env is None or spec.parse is None else spec.parse(spec.env, raw)
        given[name] = Given(name, checked, parsed, spec.env)
    return given


def options_of(function: str, keywords: Mapping[str, Any]) -> Options:
    """``Options(**keywords)``, with the TypeError a plain keyword-only ``function`` would raise."""
    for name in keywords:
        if name not in OPTIONS:
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}")
    return Options(**keywords)


# --- the signature ---------------------------------------------------------------------------------------


def keywords_of(declaration: Callable[P, object]) -> Callable[[Callable[..., R]], Callable[P, R]]:
    """Give the decorated ``f(**options)`` the keyword parameters of ``declaration`` (``Options``).

    For type checkers through the ``ParamSpec`` (mypy and IDEs see ``configure(*, sdk_disabled: bool |
    None = None, ...)``), and at run time through ``__signature__`` (``help()``, ``inspect``).
    """

    def apply(function: Callable[..., R]) -> Callable[P, R]:
        returns = inspect.signature(function).return_annotation
        function.__signature__ = inspect.signature(declaration).replace(  # type: ignore[attr-defined]
            return_annotation=returns
        )
        return function

    return apply
