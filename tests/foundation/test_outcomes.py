"""Table-driven tests of the default classifiers (docs/outcomes.md is the same table)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from otel_model_health.outcomes import (
    MAX_RETRY_AFTER_S,
    Classification,
    Outcome,
    StreamEnd,
    classify_call,
    classify_span,
    not_the_models_failure,
    parse_retry_after,
)

S, F, R, N = Outcome.SUCCESS, Outcome.FAILURE, Outcome.RATE_LIMITED, Outcome.NEUTRAL


class _SdkError(Exception):
    """Shaped like openai/anthropic APIStatusError: carries status_code."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"status {status_code}")
        self.status_code = status_code


def _named(name: str, base: type[BaseException] = Exception) -> BaseException:
    return type(name, (base,), {})("boom")


CALL_ROWS: list[tuple[str, dict[str, Any], Classification]] = [
    ("2xx complete body", {"status_code": 200}, Classification(S, None)),
    ("2xx complete stream", {"status_code": 200, "stream_end": StreamEnd.COMPLETE}, Classification(S, None)),
    ("201 created", {"status_code": 201}, Classification(S, None)),
    ("500", {"status_code": 500}, Classification(F, "500")),
    ("502", {"status_code": 502}, Classification(F, "502")),
    ("503", {"status_code": 503}, Classification(F, "503")),
    ("529 overloaded", {"status_code": 529}, Classification(F, "529")),
    ("408", {"status_code": 408}, Classification(F, "timeout")),
    ("httpx read timeout", {"exception": httpx.ReadTimeout("t")}, Classification(F, "timeout")),
    ("httpx connect timeout", {"exception": httpx.ConnectTimeout("t")}, Classification(F, "timeout")),
    ("builtin TimeoutError", {"exception": TimeoutError()}, Classification(F, "timeout")),
    ("openai APITimeoutError", {"exception": _named("APITimeoutError")}, Classification(F, "timeout")),
    ("connection refused", {"exception": ConnectionRefusedError()}, Classification(F, "connection_error")),
    ("connection reset", {"exception": ConnectionResetError()}, Classification(F, "connection_error")),
    ("httpx connect error", {"exception": httpx.ConnectError("x")}, Classification(F, "connection_error")),
    ("DNS failure", {"exception": socket.gaierror()}, Classification(F, "connection_error")),
    (
        "httpx remote protocol",
        {"exception": httpx.RemoteProtocolError("x")},
        Classification(F, "connection_error"),
    ),
    (
        "SDK APIConnectionError",
        {"exception": _named("APIConnectionError")},
        Classification(F, "connection_error"),
    ),
    ("stream dropped mid-body", {"stream_end": StreamEnd.DROPPED}, Classification(F, "connection_error")),
    (
        "clean end, no terminal event",
        {"stream_end": StreamEnd.NO_TERMINAL_EVENT},
        Classification(F, "incomplete_stream"),
    ),
    (
        "error event in 200 stream",
        {"status_code": 200, "stream_end": StreamEnd.ERROR_EVENT, "stream_error_type": "overloaded_error"},
        Classification(F, "overloaded_error"),
    ),
    ("error event, unnamed", {"stream_end": StreamEnd.ERROR_EVENT}, Classification(F, "stream_error")),
    (
        "rate-limit error event",
        {"stream_end": StreamEnd.ERROR_EVENT, "stream_error_type": "rate_limit_error"},
        Classification(R, "429"),
    ),
    ("404", {"status_code": 404}, Classification(F, "model_not_found")),
    ("SDK NotFoundError", {"exception": _SdkError(404)}, Classification(F, "model_not_found")),
    ("401", {"status_code": 401}, Classification(Outcome.AUTH_ERROR, "auth_error")),
    ("402", {"status_code": 402}, Classification(Outcome.AUTH_ERROR, "auth_error")),
    ("403", {"status_code": 403}, Classification(Outcome.AUTH_ERROR, "auth_error")),
    (
        "429 insufficient_quota",
        {"status_code": 429, "stream_error_type": "insufficient_quota"},
        Classification(Outcome.AUTH_ERROR, "auth_error"),
    ),
    ("429", {"status_code": 429}, Classification(R, "429")),
    ("SDK RateLimitError by status", {"exception": _SdkError(429)}, Classification(R, "429")),
    ("RateLimitError by name", {"exception": _named("RateLimitError")}, Classification(R, "429")),
    ("400", {"status_code": 400}, Classification(N, "400")),
    ("413", {"status_code": 413}, Classification(N, "413")),
    ("422", {"status_code": 422}, Classification(N, "422")),
    ("SDK BadRequestError", {"exception": _SdkError(400)}, Classification(N, "400")),
    ("caller closed the stream", {"stream_end": StreamEnd.CANCELLED}, Classification(N, "cancelled")),
    ("asyncio cancelled", {"exception": asyncio.CancelledError()}, Classification(N, "cancelled")),
    ("GeneratorExit", {"exception": GeneratorExit()}, Classification(N, "cancelled")),
    ("SystemExit, like KeyboardInterrupt", {"exception": SystemExit(1)}, Classification(N, "cancelled")),
    (
        "200 error object with an HTTP code (OpenRouter)",
        {"status_code": 200, "stream_end": StreamEnd.ERROR_EVENT, "stream_error_type": "502"},
        Classification(F, "502"),
    ),
    (
        "200 error object saying 429",
        {"status_code": 200, "stream_end": StreamEnd.ERROR_EVENT, "stream_error_type": "429"},
        Classification(R, "429"),
    ),
    (
        "200 error object: the caller's bad request",
        {
            "status_code": 200,
            "stream_end": StreamEnd.ERROR_EVENT,
            "stream_error_type": "invalid_request_error",
        },
        Classification(N, "invalid_request_error"),
    ),
    (
        "200 error object: the caller's quota",
        {"status_code": 200, "stream_end": StreamEnd.ERROR_EVENT, "stream_error_type": "insufficient_quota"},
        Classification(Outcome.AUTH_ERROR, "auth_error"),
    ),
    (
        "exception while cancelling a stream",
        {"exception": RuntimeError("x"), "stream_end": StreamEnd.CANCELLED},
        Classification(N, "cancelled"),
    ),
    ("unknown exception", {"exception": ValueError("x")}, Classification(F, "ValueError")),
    ("other 4xx", {"status_code": 409}, Classification(N, "409")),
    (
        "subclass of a known SDK error",
        {"exception": type("Sub", (type("RateLimitError", (Exception,), {}),), {})()},
        Classification(R, "429"),
    ),
]


@pytest.mark.parametrize(("case", "kwargs", "expected"), CALL_ROWS, ids=[row[0] for row in CALL_ROWS])
def test_classify_call(case: str, kwargs: dict[str, Any], expected: Classification) -> None:
    assert classify_call(**kwargs) == expected


def test_sdk_quota_error_is_the_accounts() -> None:
    exc = _SdkError(429)
    exc.code = "insufficient_quota"  # type: ignore[attr-defined]
    assert classify_call(exception=exc) == Classification(Outcome.AUTH_ERROR, "auth_error")


@pytest.mark.parametrize(
    ("classification", "operation", "succeeded", "expected"),
    [
        (
            Classification(F, "model_not_found"),
            "inference",
            False,
            Classification(Outcome.UNKNOWN_MODEL, "model_not_found"),
        ),
        (Classification(F, "model_not_found"), "inference", True, Classification(F, "model_not_found")),
        # a probed model must exist: its 404 is the model's failure even before any success
        (Classification(F, "model_not_found"), "health_check", False, Classification(F, "model_not_found")),
        (Classification(F, "503"), "inference", False, Classification(F, "503")),
        (Classification(N, "model_not_found"), "inference", False, Classification(N, "model_not_found")),
    ],
)
def test_not_the_models_failure(
    classification: Classification, operation: str, succeeded: bool, expected: Classification
) -> None:
    asked: list[bool] = []

    def has_succeeded() -> bool:
        asked.append(True)
        return succeeded

    verdict = not_the_models_failure(classification, health_operation=operation, has_succeeded=has_succeeded)
    assert verdict == expected
    # the registry is asked only when the answer matters
    assert bool(asked) == (
        classification == Classification(F, "model_not_found") and operation == "inference"
    )


def test_exception_wins_over_status() -> None:
    assert classify_call(status_code=200, exception=httpx.ReadTimeout("t")) == Classification(F, "timeout")


def test_bool_status_code_attribute_is_ignored() -> None:
    exc = _named("APIConnectionError")
    exc.status_code = True  # type: ignore[attr-defined]
    assert classify_call(exception=exc) == Classification(F, "connection_error")


SPAN_ROWS: list[tuple[str, dict[str, Any], bool, Classification]] = [
    ("status 200", {"http.response.status_code": 200}, False, Classification(S, None)),
    ("status 503", {"http.response.status_code": 503}, True, Classification(F, "503")),
    ("status 529", {"http.response.status_code": 529}, True, Classification(F, "529")),
    ("status 429", {"http.response.status_code": 429}, True, Classification(R, "429")),
    ("status 400", {"http.response.status_code": 400}, True, Classification(N, "400")),
    (
        "status wins over error.type",
        {"http.response.status_code": 429, "error.type": "APIError"},
        True,
        Classification(R, "429"),
    ),
    ("RateLimitError", {"error.type": "RateLimitError"}, True, Classification(R, "429")),
    (
        "qualified openai.RateLimitError",
        {"error.type": "openai.RateLimitError"},
        True,
        Classification(R, "429"),
    ),
    ("APITimeoutError", {"error.type": "APITimeoutError"}, True, Classification(F, "timeout")),
    ("APIConnectionError", {"error.type": "APIConnectionError"}, True, Classification(F, "connection_error")),
    ("InternalServerError", {"error.type": "InternalServerError"}, True, Classification(F, "500")),
    ("NotFoundError", {"error.type": "NotFoundError"}, True, Classification(F, "model_not_found")),
    (
        "AuthenticationError",
        {"error.type": "AuthenticationError"},
        True,
        Classification(Outcome.AUTH_ERROR, "auth_error"),
    ),
    (
        "PermissionDeniedError",
        {"error.type": "PermissionDeniedError"},
        True,
        Classification(Outcome.AUTH_ERROR, "auth_error"),
    ),
    ("BadRequestError", {"error.type": "BadRequestError"}, True, Classification(N, "400")),
    ("UnprocessableEntityError", {"error.type": "UnprocessableEntityError"}, True, Classification(N, "422")),
    ("overloaded_error", {"error.type": "overloaded_error"}, True, Classification(F, "overloaded_error")),
    ("numeric error.type", {"error.type": "503"}, True, Classification(F, "503")),
    ("our own timeout", {"error.type": "timeout"}, True, Classification(F, "timeout")),
    ("unknown error.type", {"error.type": "SomethingElse"}, True, Classification(F, "SomethingElse")),
    ("status ERROR only", {}, True, Classification(F, "_OTHER")),
    ("no error at all", {}, False, Classification(S, None)),
    ("bool status ignored", {"http.response.status_code": True}, False, Classification(S, None)),
]


@pytest.mark.parametrize(
    ("case", "attributes", "is_error", "expected"), SPAN_ROWS, ids=[r[0] for r in SPAN_ROWS]
)
def test_classify_span(
    case: str, attributes: dict[str, Any], is_error: bool, expected: Classification
) -> None:
    assert classify_span(attributes, status_is_error=is_error) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        ("0.5", 0.5),
        (" 12 ", 12.0),
        ("-3", 0.0),
        ("nan", None),
        ("garbage", None),
        ("999999999", MAX_RETRY_AFTER_S),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(value, now_epoch_s=now) == expected
