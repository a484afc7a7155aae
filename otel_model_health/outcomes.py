"""Outcome of one model call, and the two classifiers that produce it.

``classify_call`` turns what our instrumentation saw (HTTP status, exception, how a stream ended) into an
``(outcome, error.type)`` pair; ``classify_span`` does the same for GenAI spans of other
instrumentations. Both are pure functions and users can replace either (see docs/outcomes.md).
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Final, NamedTuple

from . import semconv


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"  # counts against the model
    RATE_LIMITED = "rate_limited"  # not a failure; makes the key unavailable until Retry-After
    NEUTRAL = "neutral"  # recorded, not held against the model (bad request, caller cancelled)
    # The caller's mistakes, not the model's health: counted and visible, never in a window or an incident.
    UNKNOWN_MODEL = "unknown_model"  # 404 for a model never seen to succeed (a typo, a made-up name)
    AUTH_ERROR = "auth_error"  # 401/402/403, per-account quota: the credential, not the model
    # Refused by enforcement before any I/O (docs/enforcement.md): the call was never made, so it says
    # nothing about the model and never enters a window.
    REJECTED = "rejected"


class StreamEnd(enum.StrEnum):
    """How a streamed response ended, as far as the instrumentation could tell."""

    COMPLETE = "complete"  # terminal event seen (`[DONE]`, `message_stop`), or a complete body
    NO_TERMINAL_EVENT = "no_terminal_event"  # clean EOF without the terminal event
    DROPPED = "dropped"  # connection broke mid-body
    CANCELLED = "cancelled"  # the caller closed it early or abandoned it
    ERROR_EVENT = "error_event"  # the provider sent an `error` event inside a 200 stream


class Classification(NamedTuple):
    outcome: Outcome
    error_type: str | None  # low-cardinality `error.type`; None for success


# error.type values of our own
TIMEOUT: Final = "timeout"
CONNECTION_ERROR: Final = "connection_error"
INCOMPLETE_STREAM: Final = "incomplete_stream"
MODEL_NOT_FOUND: Final = "model_not_found"
AUTH_ERROR: Final = "auth_error"
MALFORMED_RESPONSE: Final = "malformed_response"  # a 2xx body or stream event that is not JSON
CANCELLED: Final = "cancelled"
STREAM_ERROR: Final = "stream_error"  # an `error` event whose type the provider did not name
MODEL_UNAVAILABLE: Final = "model_unavailable"  # refused by enforcement: breaker open, trials busy, 429

SUCCESS: Final = Classification(Outcome.SUCCESS, None)

_NEUTRAL_STATUSES: Final = frozenset({400, 413, 422})
# 401 bad key, 402 out of credits (OpenRouter), 403 not allowed: one account's problem, not the model's.
_CREDENTIAL_STATUSES: Final = frozenset({401, 402, 403})
# Error codes / types providers use for problems of one account rather than of the model (OpenAI's
# `insufficient_quota` comes with a 429 but is no rate limit: it does not go away by waiting).
CREDENTIAL_ERROR_CODES: Final = frozenset(
    {
        "insufficient_quota",
        "billing_hard_limit_reached",
        "billing_not_active",
        "invalid_api_key",
        "account_deactivated",
        "authentication_error",
        "permission_error",
        "permission_denied",
        "unauthorized",
    }
)
AUTH: Final = Classification(Outcome.AUTH_ERROR, AUTH_ERROR)
REJECTED: Final = Classification(Outcome.REJECTED, MODEL_UNAVAILABLE)
# The header of the transport's synthetic answer to a refused call (enforcement.py): the reason.
REFUSED_HEADER: Final = "x-model-health-refused"

# Exception class names (any class in the MRO) of the openai / anthropic SDKs, httpx(2) and the
# standard library, mapped to an outcome. Looked up by name so no SDK needs importing.
_EXCEPTION_NAMES: Final[dict[str, Classification]] = {
    "RateLimitError": Classification(Outcome.RATE_LIMITED, "429"),
    "APITimeoutError": Classification(Outcome.FAILURE, TIMEOUT),
    "TimeoutException": Classification(Outcome.FAILURE, TIMEOUT),  # httpx(2) timeouts
    "TimeoutError": Classification(Outcome.FAILURE, TIMEOUT),
    "APIConnectionError": Classification(Outcome.FAILURE, CONNECTION_ERROR),
    "NetworkError": Classification(Outcome.FAILURE, CONNECTION_ERROR),  # httpx(2) connect/read/write
    "RemoteProtocolError": Classification(Outcome.FAILURE, CONNECTION_ERROR),
    "ConnectionError": Classification(Outcome.FAILURE, CONNECTION_ERROR),  # builtin: refused, reset
    "gaierror": Classification(Outcome.FAILURE, CONNECTION_ERROR),  # DNS
    "InternalServerError": Classification(Outcome.FAILURE, "500"),
    "OverloadedError": Classification(Outcome.FAILURE, "529"),
    "ServiceUnavailableError": Classification(Outcome.FAILURE, "503"),
    "NotFoundError": Classification(Outcome.FAILURE, MODEL_NOT_FOUND),
    "AuthenticationError": AUTH,
    "PermissionDeniedError": AUTH,
    "BadRequestError": Classification(Outcome.NEUTRAL, "400"),
    "UnprocessableEntityError": Classification(Outcome.NEUTRAL, "422"),
    "RequestTooLargeError": Classification(Outcome.NEUTRAL, "413"),
    "CancelledError": Classification(Outcome.NEUTRAL, CANCELLED),
    "GeneratorExit": Classification(Outcome.NEUTRAL, CANCELLED),
    "KeyboardInterrupt": Classification(Outcome.NEUTRAL, CANCELLED),
    "SystemExit": Classification(Outcome.NEUTRAL, CANCELLED),  # the process is stopping, like Ctrl-C
    "ModelUnavailableError": REJECTED,  # refused by enforcement (a call inside this one)
}

# `error.type` values other instrumentations put on GenAI spans: SDK exception names (above) and
# provider error types from response bodies (Anthropic `overloaded_error`, OpenAI `server_error`).
_ERROR_TYPE_NAMES: Final[dict[str, Classification]] = {
    **_EXCEPTION_NAMES,
    "overloaded_error": Classification(Outcome.FAILURE, "overloaded_error"),
    "api_error": Classification(Outcome.FAILURE, "api_error"),
    "server_error": Classification(Outcome.FAILURE, "server_error"),
    "rate_limit_error": Classification(Outcome.RATE_LIMITED, "429"),
    "rate_limit_exceeded": Classification(Outcome.RATE_LIMITED, "429"),
    "not_found_error": Classification(Outcome.FAILURE, MODEL_NOT_FOUND),
    "model_not_found": Classification(Outcome.FAILURE, MODEL_NOT_FOUND),
    **dict.fromkeys(CREDENTIAL_ERROR_CODES, AUTH),
    "invalid_request_error": Classification(Outcome.NEUTRAL, "invalid_request_error"),
    TIMEOUT: Classification(Outcome.FAILURE, TIMEOUT),
    CONNECTION_ERROR: Classification(Outcome.FAILURE, CONNECTION_ERROR),
    INCOMPLETE_STREAM: Classification(Outcome.FAILURE, INCOMPLETE_STREAM),
    MODEL_NOT_FOUND: Classification(Outcome.FAILURE, MODEL_NOT_FOUND),
    AUTH_ERROR: AUTH,
    MALFORMED_RESPONSE: Classification(Outcome.FAILURE, MALFORMED_RESPONSE),
    CANCELLED: Classification(Outcome.NEUTRAL, CANCELLED),
}


def classify_status(status_code: int) -> Classification:
    """Map an HTTP status to an outcome (docs/outcomes.md)."""
    if 200 <= status_code < 300:
        return SUCCESS
    if status_code == 429:
        return Classification(Outcome.RATE_LIMITED, "429")
    if status_code == 408:
        return Classification(Outcome.FAILURE, TIMEOUT)
    if status_code == 404:
        return Classification(Outcome.FAILURE, MODEL_NOT_FOUND)
    if status_code in _CREDENTIAL_STATUSES:
        return AUTH
    if status_code >= 500:  # includes Anthropic's 529 "overloaded"
        return Classification(Outcome.FAILURE, str(status_code))
    if status_code in _NEUTRAL_STATUSES:
        return Classification(Outcome.NEUTRAL, str(status_code))
    # Other 4xx are about the caller's request (409, 402 ...); 1xx/3xx never end a model call.
    return Classification(Outcome.NEUTRAL, str(status_code))


def _refused(exc: BaseException) -> bool:
    """The SDK error raised from our transport's refusal (docs/enforcement.md): its response says so."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    try:
        return headers is not None and headers.get(REFUSED_HEADER) is not None
    except Exception:
        return False


def classify_exception(exc: BaseException) -> Classification:
    """Map an exception raised by a model call. SDK errors carrying ``status_code`` use the status (and
    their ``code``, for the account errors that come with a 429)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        if getattr(exc, "code", None) in CREDENTIAL_ERROR_CODES:
            return AUTH
        if status == 503 and _refused(exc):
            return REJECTED
        return classify_status(status)
    for cls in type(exc).__mro__:
        hit = _EXCEPTION_NAMES.get(cls.__name__)
        if hit is not None:
            return hit
    return Classification(Outcome.FAILURE, type(exc).__qualname__)


def classify_call(
    *,
    status_code: int | None = None,
    exception: BaseException | None = None,
    stream_end: StreamEnd | None = None,
    stream_error_type: str | None = None,
) -> Classification:
    """The default classifier for a call our instrumentation observed.

    Precedence: an exception, then a non-2xx status, then how the stream ended.
    """
    if exception is not None:
        if stream_end is StreamEnd.CANCELLED:
            return Classification(Outcome.NEUTRAL, CANCELLED)
        return classify_exception(exception)
    if status_code is not None and not 200 <= status_code < 300:
        # `stream_error_type` is then the error code of the body, when it had one.
        if stream_error_type in CREDENTIAL_ERROR_CODES:
            return AUTH
        return classify_status(status_code)
    if stream_end is None or stream_end is StreamEnd.COMPLETE:
        return SUCCESS
    if stream_end is StreamEnd.CANCELLED:
        return Classification(Outcome.NEUTRAL, CANCELLED)
    if stream_end is StreamEnd.NO_TERMINAL_EVENT:
        return Classification(Outcome.FAILURE, INCOMPLETE_STREAM)
    if stream_end is StreamEnd.DROPPED:
        return Classification(Outcome.FAILURE, CONNECTION_ERROR)
    return classify_error_object(stream_error_type)


def classify_error_object(error_type: str | None) -> Classification:
    """An error event in a 200 stream, or an ``{"error": …}`` object as a 200 body: a failure unless the
    error says otherwise (a rate limit, a bad request, the caller's credentials). A numeric code
    (OpenRouter puts the HTTP status there) is read as a status."""
    if not error_type:
        return Classification(Outcome.FAILURE, STREAM_ERROR)
    if error_type.isdigit() and len(error_type) == 3:
        status = classify_status(int(error_type))
        if status.outcome is not Outcome.SUCCESS:
            return status
    named = _ERROR_TYPE_NAMES.get(error_type)
    return named if named is not None else Classification(Outcome.FAILURE, error_type)


def classify_span(attributes: Mapping[str, Any], *, status_is_error: bool) -> Classification:
    """The default classifier for a GenAI span of another instrumentation."""
    status = attributes.get(semconv.HTTP_RESPONSE_STATUS_CODE)
    if isinstance(status, int) and not isinstance(status, bool):
        return SUCCESS if 200 <= status < 300 else classify_status(status)  # the common case first
    error_type = attributes.get(semconv.ERROR_TYPE)
    if isinstance(error_type, str) and error_type:
        short = error_type.rsplit(".", 1)[-1]  # `openai.RateLimitError` → `RateLimitError`
        if short.isdigit():
            return classify_status(int(short))
        named = _ERROR_TYPE_NAMES.get(short)
        if named is not None:
            return named
        return Classification(Outcome.FAILURE, short)
    if status_is_error:
        return Classification(Outcome.FAILURE, semconv.ERROR_TYPE_OTHER)
    return SUCCESS


def not_the_models_failure(
    classification: Classification, *, health_operation: str, has_succeeded: Callable[[], bool]
) -> Classification:
    """A 404 "model not found" is the model's failure only for a known model: one that has worked before
    (then removed, deprecated) or that a probe checks (an operator probes the models that must exist);
    for any other it is the caller's typo or made-up name. ``has_succeeded`` is asked only for a 404."""
    if (
        classification.error_type == MODEL_NOT_FOUND
        and classification.outcome is Outcome.FAILURE
        and health_operation != semconv.OPERATION_HEALTH_CHECK
        and not has_succeeded()
    ):
        return Classification(Outcome.UNKNOWN_MODEL, MODEL_NOT_FOUND)
    return classification


CallClassifier = Callable[..., Classification]
"""Signature of ``classify_call``: keyword arguments ``status_code``, ``exception``, ``stream_end``,
``stream_error_type``."""

SpanClassifier = Callable[..., Classification]
"""Signature of ``classify_span``: ``(attributes, *, status_is_error)``."""

MAX_RETRY_AFTER_S: Final = 3600.0


def parse_retry_after(value: str | None, *, now_epoch_s: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` (or ``retry-after-ms``) header value; None if absent or
    unparseable. Capped at an hour so a hostile header cannot disable a model for days."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None or now_epoch_s is None:
            now_epoch_s = time.time() if now_epoch_s is None else now_epoch_s
        seconds = when.timestamp() - now_epoch_s
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
