"""Checks of ``configure()`` option values and parsers of environment variables.

Each function takes ``source``, the option (``"option max_keys"``) or the variable it reads, and names it
in the one ``ConfigurationError`` it raises, together with the bad value. A parser takes a variable's text
and returns None when the text is empty (the OpenTelemetry rule: empty is unset); a check takes a value
passed to ``configure()``. ``options.py`` says which function reads which option.

The OpenTelemetry variables follow the OpenTelemetry SDK environment specification: booleans are true
only for ``true`` (any case); lists are ``k1=v1,k2=v2`` with percent-encoded values. Numbers are
stricter than the specification (which says to ignore a bad one): a bad number fails start-up.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from typing import Any, Final, Literal
from urllib.parse import unquote, urlsplit

from .health.types import BreakerConfig
from .slo.definition import SLO, coerce_slos, load_slos

logger: Final = logging.getLogger("otel_model_health")

Protocol = Literal["http/protobuf", "grpc"]
Pairs = tuple[tuple[str, str], ...]

# The largest number accepted in a numeric variable: the OTel spec's integer range, well below where a
# wait overflows threading's timeouts (OTEL_METRIC_EXPORT_INTERVAL=1e30 killed the metric reader's thread).
MAX_NUMBER: Final = 2**31 - 1

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"", "0", "false", "no", "off"})


class ConfigurationError(ValueError):
    """An invalid option or environment variable, detected by ``configure()`` before anything starts."""


def as_given(_source: str, value: object) -> object:
    """For an option taken as passed (a provider: any object the app hands over)."""
    return value


# --- booleans ------------------------------------------------------------------------------------------


def check_bool(source: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{source} must be True or False, got {value!r}")
    return value


def otel_bool(source: str, raw: str) -> bool:
    # The OTel spec: only "true" (case-insensitive) is true; anything else is false, with a warning.
    text = raw.strip().lower()
    if text == "true":
        return True
    if text not in ("", "false"):
        logger.warning("%s=%r is not 'true' or 'false'; treated as false (OpenTelemetry rule)", source, raw)
    return False


def lenient_bool(source: str, raw: str) -> bool:
    """The ``SENTRY_*`` rule: the usual spellings, and an error for anything else (``ture``)."""
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"{source} must be one of true/false/1/0/yes/no/on/off, got {raw!r}")


# --- text ----------------------------------------------------------------------------------------------


def text(_source: str, raw: str) -> str | None:
    return raw.strip() or None


def check_name(source: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{source} must be a non-empty string, got {value!r}")
    return value.strip()


def as_text(parse: Callable[[str, str], Any]) -> Callable[[str, object], Any]:
    """A check that hands the option's value, as text, to the variable's parser: one rule for both."""

    def check(source: str, value: object) -> Any:
        if isinstance(value, bool):
            raise ConfigurationError(f"{source}: unexpected boolean {value!r}")
        return parse(source, str(value))

    return check


# --- key=value lists -----------------------------------------------------------------------------------


def _pairs(source: str, raw: str, *, show_values: bool) -> Pairs:
    """``k1=v1,k2=v2`` with percent-encoded values (the OTel list format)."""
    pairs: list[tuple[str, str]] = []
    for index, item in enumerate(raw.split(","), start=1):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            shown = repr(item) if show_values else "(not shown: headers often carry credentials)"
            raise ConfigurationError(f"{source}: entry #{index} is not key=value: {shown}")
        pairs.append((unquote(key.strip()), unquote(value.strip())))
    return tuple(pairs)


def parse_attributes(source: str, raw: str) -> Pairs:
    return _pairs(source, raw, show_values=True)  # resource attributes are not secret: shown in full


def check_attributes(source: str, value: object) -> Pairs:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{source} must be a mapping, got {value!r}")
    pairs = []
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip():
            raise ConfigurationError(f"{source} has an empty or non-string key: {key!r}")
        pairs.append((key.strip(), str(item)))
    return tuple(pairs)


def parse_headers(source: str, raw: str) -> Pairs:
    return _pairs(source, raw, show_values=False)


def check_headers(source: str, value: object) -> Pairs:
    if isinstance(value, str):
        return parse_headers(source, value)
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{source} must be a mapping of header names to values")
    pairs = []
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip() or not isinstance(item, str):
            raise ConfigurationError(
                f"{source} must map non-empty header names to strings; bad entry for key {key!r}"
            )
        pairs.append((key.strip(), item))
    return tuple(pairs)


# --- OTLP ----------------------------------------------------------------------------------------------


def check_url(source: str, raw: object) -> str | None:
    if isinstance(raw, str) and not raw.strip():
        return None
    if not isinstance(raw, str):
        raise ConfigurationError(f"{source} must be a URL string, got {raw!r}")
    url = raw.strip()
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a non-numeric or out-of-range port
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise ConfigurationError(
            f"{source} must be an http:// or https:// URL with a host (e.g. http://host:4318), got {raw!r}"
        )
    return url


def check_protocol(source: str, raw: object) -> Protocol | None:
    if isinstance(raw, str) and not raw.strip():
        return None
    name = raw.strip().lower() if isinstance(raw, str) else raw
    if name == "grpc":
        return "grpc"
    if name == "http/protobuf":
        return "http/protobuf"
    hint = " (http/json has no Python exporter)" if name == "http/json" else ""
    raise ConfigurationError(f"{source} must be 'http/protobuf' or 'grpc', got {raw!r}{hint}")


# --- numbers -------------------------------------------------------------------------------------------


def number(source: str, raw: object, *, integer: bool, unit: str, from_text: bool = True) -> float:
    """A positive number no larger than ``MAX_NUMBER``; anything else raises, naming ``source``.

    ``from_text``: parse a string (a variable's value); an option must be a number already.
    """
    value = math.nan
    if isinstance(raw, str) and from_text:
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


def check_seconds(source: str, value: object) -> float:
    return number(source, value, integer=False, unit="seconds", from_text=False)


def parse_milliseconds_as_s(source: str, raw: str) -> float | None:
    if not raw.strip():
        return None
    return number(source, raw, integer=False, unit="milliseconds") / 1000.0


def parse_rate(source: str, raw: str) -> float | None:
    """A sampling rate in [0, 1]."""
    if not raw.strip():
        return None
    try:
        rate = float(raw.strip())
    except ValueError:
        rate = math.nan
    if math.isnan(rate) or not 0.0 <= rate <= 1.0:
        raise ConfigurationError(f"{source} must be a number between 0 and 1, got {raw!r}")
    return rate


# --- health --------------------------------------------------------------------------------------------


def check_breaker(source: str, value: object) -> BreakerConfig:
    if isinstance(value, BreakerConfig):
        return value
    if isinstance(value, Mapping):
        try:
            return BreakerConfig(**value)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{source}: {exc}") from None
    raise ConfigurationError(f"{source} must be a BreakerConfig or a mapping, got {value!r}")


def parse_breaker(source: str, raw: str) -> BreakerConfig | None:
    """``open_wait_s=10,minimum_calls=3``: ``BreakerConfig`` fields, each parsed as its default's type."""
    pairs = _pairs(source, raw, show_values=True)
    if not pairs:
        return None
    types = {f.name: type(f.default) for f in fields(BreakerConfig)}
    values: dict[str, object] = {}
    for name, text_value in pairs:
        kind = types.get(name)
        if kind is None:
            raise ConfigurationError(f"{source}: no breaker setting {name!r} (known: {', '.join(types)})")
        try:
            values[name] = kind(text_value) if kind in (int, float) else text_value
        except ValueError:
            raise ConfigurationError(
                f"{source}: {name} must be {'an integer' if kind is int else 'a number'}, got {text_value!r}"
            ) from None
    return check_breaker(source, values)


def check_slos(source: str, value: object) -> tuple[SLO, ...]:
    """SLO values or mappings, or a TOML / JSON file's path."""
    try:
        if isinstance(value, (str, os.PathLike)):
            return load_slos(os.fspath(value))
        if isinstance(value, Mapping) or not isinstance(value, Iterable):
            raise ConfigurationError(f"{source} must be a list of SLOs or a file path, got {value!r}")
        return coerce_slos(value)
    except (OSError, ValueError, TypeError) as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"{source}: {exc}") from None


def parse_slo_file(variable: str, text: str) -> tuple[SLO, ...] | None:
    return check_slos(variable, text.strip()) if text.strip() else None


def check_max_keys(source: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{source} must be an integer >= 1, got {value!r}")
    return value


def check_port(source: str, value: object) -> int:
    """A TCP port, 0 (any free port) to 65535."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigurationError(f"{source} must be a port number from 0 to 65535, got {value!r}")
    return value


def parse_port(source: str, raw: str) -> int | None:
    if not raw.strip():
        return None
    try:
        value: object = int(raw.strip())
    except ValueError:
        value = raw
    return check_port(source, value)


def check_host(source: str, value: object) -> str:
    """An address to bind: a host name or an IP; no scheme, port, path or spaces."""
    host = value.strip() if isinstance(value, str) else ""
    one_colon = host.count(":") == 1  # a port; IPv6 addresses have two or more
    if not host or one_colon or any(c in host for c in " /\t[]"):
        raise ConfigurationError(f"{source} must be a host name or an IP address to bind, got {value!r}")
    return host


def parse_host(source: str, raw: str) -> str | None:
    return check_host(source, raw) if raw.strip() else None


def check_callable(source: str, value: object) -> object:
    if not callable(value):
        raise ConfigurationError(f"{source} must be callable, got {value!r}")
    return value


# --- Sentry --------------------------------------------------------------------------------------------


def check_models(source: str, value: object) -> tuple[str, ...]:
    """Model ids or ``provider/model`` pairs: a list, or a comma-separated string."""
    if not isinstance(value, Iterable):
        raise ConfigurationError(f"{source} must be a list of model ids or a string, got {value!r}")
    models = []
    for item in value.split(",") if isinstance(value, str) else value:
        if not isinstance(item, str):
            raise ConfigurationError(f"{source} must hold strings, got {item!r}")
        if item.strip():
            models.append(item.strip())
    return tuple(models)


def check_trace_url_template(source: str, value: object) -> str:
    """A trace-viewer URL with ``{trace_id}`` and ``{span_id}`` only.

    The template is rendered as an event renders it (ids as hex text), so whatever would fail there
    (``{trace}``, ``{0}``, ``{trace_id:d}``) fails here, once, instead of on every event.
    """
    if isinstance(value, str):
        try:
            value.format(trace_id="0" * 32, span_id="0" * 16)
        except (KeyError, IndexError, ValueError, AttributeError):
            pass
        else:
            return value
    raise ConfigurationError(f"{source} may only use {{trace_id}} and {{span_id}}, got {value!r}")


def parse_dsn(source: str, raw: str) -> str | None:
    dsn = raw.strip()
    if not dsn:
        return None
    try:
        parts = urlsplit(dsn)
        valid = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and bool(parts.username)
            and bool(parts.path.strip("/"))
        )
    except ValueError:  # e.g. a non-numeric port
        valid = False
    if not valid:
        raise ConfigurationError(
            f"{source} must look like https://<public_key>@<host>/<project_id>, got {raw!r}"
        )
    return dsn


# --- the fleet store --------------------------------------------------------------------------------------

REDIS_SCHEMES: Final = ("redis", "rediss", "unix")


def check_redis_url(source: str, url: object) -> str:
    """The URL, or ``ConfigurationError`` naming ``source`` and the URL (without its password)."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"{source} must be a redis://, rediss:// or unix:// URL, got {url!r}")
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError as exc:
        raise ConfigurationError(f"{source} is not a valid URL: {redact_url(url)!r} ({exc})") from None
    if parts.scheme not in REDIS_SCHEMES:
        raise ConfigurationError(
            f"{source} must be a redis://, rediss:// or unix:// URL, got {redact_url(url)!r}"
        )
    if parts.scheme == "unix" and not parts.path:
        raise ConfigurationError(f"{source}: a unix:// URL needs a socket path, got {redact_url(url)!r}")
    if parts.scheme != "unix" and (not parts.hostname or port == 0):
        raise ConfigurationError(f"{source}: {redact_url(url)!r} has no host")
    return url


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and errors."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}").geturl()


def check_store(source: str, value: object) -> object:
    """A Redis URL (checked), or a store object passed as is (``RedisStore``: it checked its own URL)."""
    if isinstance(value, str):
        return check_redis_url(source, value)
    if hasattr(value, "bind") and hasattr(value, "url"):
        return value
    raise ConfigurationError(f"{source} must be a Redis URL or a RedisStore, got {value!r}")


def parse_redis_url(source: str, raw: str) -> str | None:
    return check_redis_url(source, raw) if raw.strip() else None
