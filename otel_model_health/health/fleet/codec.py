"""What a fleet store writes to Redis and reads back: model ids, outcome batches, breaker records.

Everything read from Redis is checked field by field: a key or message under our prefix may have been
written by someone else (another version, a person with ``redis-cli``), and a wrong value must be ignored
and counted, never crash a thread nor reach a model's state. ``Invalid`` is the one error for that.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final, NamedTuple
from urllib.parse import quote, unquote

from ...keys import ModelKey
from ...outcomes import Outcome
from ..types import CallResult, TransitionKind

OUTCOMES_TAG: Final = "o"  # a pub/sub message of outcomes: "o" + origin + "\n" + JSON rows
TRANSITION_TAG: Final = "t"  # a won transition: "t" + JSON
FLAG_TAG: Final = "f"  # a won provider outage or its end: "f" + JSON [kind, provider, origin, [model ids]]

_OUTCOME_BY_VALUE: Final = {o.value: o for o in Outcome}
# Transitions decided in Redis (compare-and-set); the others are each process's own (docs/fleet.md).
BREAKER_KINDS: Final = frozenset(
    {
        TransitionKind.FIRST_FAILURE,
        TransitionKind.BREAKER_OPENED,
        TransitionKind.HALF_OPEN_FAILED,
        TransitionKind.RECOVERED,
    }
)
PROVIDER_KINDS: Final = frozenset({TransitionKind.PROVIDER_OUTAGE, TransitionKind.PROVIDER_RECOVERED})
SLO_KINDS: Final = frozenset({TransitionKind.SLO_ALERT_STARTED, TransitionKind.SLO_ALERT_RESOLVED})
# Flags: decided by "set if absent" / "delete if present" of one key, not by a versioned record.
FLAG_KINDS: Final = PROVIDER_KINDS | SLO_KINDS
_KIND_BY_VALUE: Final = {k.value: k for k in BREAKER_KINDS | PROVIDER_KINDS}
MAX_MESSAGE: Final = 256  # characters of an error message shared with the fleet (already scrubbed)


class Invalid(ValueError):
    """A value under our prefix that is not what this version writes."""


def model_id(key: ModelKey) -> str:
    """``provider|gateway|model``, each part percent-escaped so the id splits back unambiguously."""
    return f"{quote(key.provider, safe='')}|{quote(key.gateway, safe='')}|{quote(key.model, safe='')}"


def parse_model_id(text: object) -> ModelKey:
    if not isinstance(text, str):
        raise Invalid(f"model id is {type(text).__name__}")
    parts = text.split("|")
    if len(parts) != 3 or not all(parts):
        raise Invalid("model id is not provider|gateway|model")
    provider, gateway, model = (unquote(p) for p in parts)
    key = ModelKey(provider=provider, model=model, gateway=gateway)
    if model_id(key) != text:  # not a normalised key: someone else's value
        raise Invalid("model id is not normalised")
    return key


# --- outcomes ----------------------------------------------------------------------------------------


class RemoteOutcome(NamedTuple):
    key: ModelKey
    result: CallResult
    at: float  # epoch seconds, when the origin recorded it


def encode_outcome(
    key_id: str, result: CallResult, at_epoch: float, started_epoch: float | None, message: str | None
) -> list[Any]:
    return [
        key_id,
        result.outcome.value,
        result.health_operation,
        result.error_type,
        result.status_code,
        result.latency_s,
        round(at_epoch, 6),
        None if started_epoch is None else round(started_epoch, 6),
        result.retry_after_s,
        message,
        result.first_chunk_s,  # for latency SLOs on time to first chunk (docs/slo.md)
    ]


def encode_batch(origin: str, rows: list[list[Any]]) -> str:
    # The origin first, as text: a process skips its own batches without parsing them.
    return origin + "\n" + json.dumps(rows, separators=(",", ":"))


def batch_origin(payload: bytes) -> tuple[str, bytes]:
    """(origin, the rows' JSON) of an outcome batch."""
    origin, sep, rows = payload.partition(b"\n")
    if not sep or not origin:
        raise Invalid("not an outcome batch")
    return _text(origin), rows


def decode_rows(rows_json: bytes, to_monotonic: Any) -> tuple[list[RemoteOutcome], int]:
    """(outcomes, rows ignored). ``to_monotonic`` maps an origin's epoch time onto our clock."""
    rows = _json(rows_json)
    if not isinstance(rows, list):
        raise Invalid("not an outcome batch")
    out: list[RemoteOutcome] = []
    ignored = 0
    for row in rows:
        try:
            out.append(_decode_row(row, to_monotonic))
        except (Invalid, TypeError, ValueError):
            ignored += 1
    return out, ignored


def _decode_row(row: object, to_monotonic: Any) -> RemoteOutcome:
    if not isinstance(row, list) or len(row) not in (10, 11):  # 10: a version without first_chunk_s
        raise Invalid("outcome row")
    key_id, outcome, operation, error_type, status, latency, at, started, retry_after, message = row[:10]
    first_chunk = row[10] if len(row) == 11 else None
    outcome_value = _OUTCOME_BY_VALUE.get(outcome) if isinstance(outcome, str) else None
    if outcome_value is None or not isinstance(operation, str) or not operation:
        raise Invalid("outcome")
    at_s = _number(at)
    result = CallResult(
        outcome_value,
        operation,
        _optional_text(error_type),
        _optional_text(message),
        None if status is None else int(_number(status)),
        None if latency is None else _number(latency),
        None if started is None else to_monotonic(_number(started)),
        None if retry_after is None else _number(retry_after),
        None,
        None if first_chunk is None else _number(first_chunk),
    )
    return RemoteOutcome(parse_model_id(key_id), result, at_s)


# --- breaker records ------------------------------------------------------------------------------------


class FleetRecord(NamedTuple):
    """A model's breaker as the fleet agreed it: written only by the compare-and-set script."""

    version: int
    state: str  # "open" | "closed"
    incident: bool
    open_until: float  # epoch seconds, meaningful when open
    level: int
    kind: TransitionKind | None  # the transition that wrote it
    origin: str

    def transition_kind(self) -> TransitionKind:
        """The kind to follow when only the record is known (a resync)."""
        if self.state == "open":
            return (
                self.kind if self.kind is TransitionKind.HALF_OPEN_FAILED else TransitionKind.BREAKER_OPENED
            )
        return TransitionKind.FIRST_FAILURE if self.incident else TransitionKind.RECOVERED


def record_from_fields(fields: list[Any]) -> FleetRecord:
    """[version, state, incident, open_until, level, kind, origin] as the scripts return them."""
    if len(fields) != 7:
        raise Invalid("record")
    version, state, incident, open_until, level, kind, origin = (_text(f) for f in fields)
    if state not in ("open", "closed"):
        raise Invalid("record state")
    return FleetRecord(
        int(_number(version)),
        state,
        incident == "1",
        _number(open_until or "0"),
        int(_number(level or "0")),
        _KIND_BY_VALUE.get(kind),
        origin,
    )


def decode_transition(payload: bytes | str) -> tuple[str, FleetRecord]:
    """A won transition's message: (model id, record)."""
    data = _json(payload)
    if not isinstance(data, list) or len(data) != 8:
        raise Invalid("not a transition")
    return _text(data[0]), record_from_fields(data[1:])


# --- flags -----------------------------------------------------------------------------------------------


class ProviderFlag(NamedTuple):
    """A provider outage (or its end) another process won."""

    kind: TransitionKind
    provider: str
    origin: str
    models: tuple[ModelKey, ...]


def flag_id(key_provider: str) -> str:
    """A provider's part of a flag key: escaped like a model id's first part, so the flusher can refresh a
    provider's outage flag from the model ids it touches."""
    return quote(key_provider, safe="")


def decode_flag(payload: bytes | str) -> ProviderFlag:
    data = _json(payload)
    if not isinstance(data, list) or len(data) != 4 or not isinstance(data[3], list):
        raise Invalid("not a flag")
    kind = _KIND_BY_VALUE.get(_text(data[0]))
    if kind not in PROVIDER_KINDS:
        raise Invalid("flag kind")
    provider = _text(data[1])
    if not provider or flag_id(unquote(provider)) != provider:
        raise Invalid("flag provider")
    models = tuple(parse_model_id(m) for m in data[3][:500])
    return ProviderFlag(kind, unquote(provider), _text(data[2]), models)


# --- helpers -------------------------------------------------------------------------------------------


def _json(payload: bytes | str) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("not JSON") from exc


def _text(value: object) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError as exc:
            raise Invalid("not UTF-8") from exc
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    raise Invalid(f"{type(value).__name__} where text was expected")


def _optional_text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid("text")
    return value[:MAX_MESSAGE]


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise Invalid("boolean where a number was expected")
    if isinstance(value, (bytes, str)):
        try:
            value = float(value)
        except ValueError as exc:
            raise Invalid("not a number") from exc
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Invalid("not a finite number")
    return float(value)
