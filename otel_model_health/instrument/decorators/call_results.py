"""What a decorated call returned or raised, turned into the end of its measurement.

``finish_exception`` and ``finish_response`` end a measurement (``DecoratedCallStep`` calls the former
when a step of the call raises); ``result_kind`` tells, once per
return type, whether a return value is a complete response or a stream the caller still has to read.
None of these raise: telemetry errors are reported and swallowed.
"""

from __future__ import annotations

import enum
import io
import types
from collections.abc import Mapping, Set
from typing import Final

from ..._internal import guarded, report_internal_error
from ...outcomes import StreamEnd, parse_retry_after
from ..call_step import CallStep
from ..measurement import CallMeasurement
from ..responses import ResponseInfo, read_response


class ResultKind(enum.Enum):
    VALUE = "value"  # a complete response (or anything that is not a stream)
    SYNC_STREAM = "sync_stream"  # an iterator: generator, openai ``Stream``
    ASYNC_STREAM = "async_stream"  # an async iterator: async generator, openai ``AsyncStream``
    SYNC_MANAGED = "sync_managed"  # a stream with ``until_done``: anthropic ``MessageStream`` ...
    ASYNC_MANAGED = "async_managed"
    SYNC_MANAGER = "sync_manager"  # ``with ...stream(...) as s``: ``MessageStreamManager`` ...
    ASYNC_MANAGER = "async_manager"
    AWAITABLE = "awaitable"  # a coroutine returned by a plain function


# Types that are iterable (or even iterators) but never a model stream.
_NOT_STREAMS: Final[tuple[type, ...]] = (
    str,
    bytes,
    bytearray,
    memoryview,
    Mapping,
    Set,
    list,
    tuple,
    range,
    io.IOBase,
)
_MAX_CACHED_TYPES: Final = 512
_kinds: dict[type, ResultKind] = {}


def _is_pydantic_model(cls: type) -> bool:
    # pydantic's BaseModel defines __iter__ over its fields: an SDK ChatCompletion is iterable.
    return hasattr(cls, "__pydantic_fields__") or hasattr(cls, "__fields_set__")


def _classify_type(cls: type) -> ResultKind:
    if cls is type(None) or issubclass(cls, _NOT_STREAMS) or _is_pydantic_model(cls):
        return ResultKind.VALUE
    if issubclass(cls, types.CoroutineType):
        return ResultKind.AWAITABLE
    name = cls.__name__
    if name.endswith("StreamManager"):  # anthropic / openai ``...StreamManager``
        if hasattr(cls, "__aenter__"):
            return ResultKind.ASYNC_MANAGER
        if hasattr(cls, "__enter__"):
            return ResultKind.SYNC_MANAGER
    managed = hasattr(cls, "until_done")
    if hasattr(cls, "__next__") and hasattr(cls, "__iter__"):
        return ResultKind.SYNC_MANAGED if managed else ResultKind.SYNC_STREAM
    if hasattr(cls, "__anext__") and hasattr(cls, "__aiter__"):
        return ResultKind.ASYNC_MANAGED if managed else ResultKind.ASYNC_STREAM
    return ResultKind.VALUE


def result_kind(value: object) -> ResultKind:
    """Cached per type: one dict lookup per call for the common return types."""
    cls = type(value)
    kind = _kinds.get(cls)
    if kind is None:
        kind = ResultKind.VALUE
        with guarded("call_results.result_kind"):
            kind = _classify_type(cls)
        if len(_kinds) < _MAX_CACHED_TYPES:
            _kinds[cls] = kind
    return kind


def apply_info(m: CallMeasurement, info: ResponseInfo) -> None:
    if info.response_model is not None:
        m.response_model = info.response_model
    if info.response_id is not None:
        m.response_id = info.response_id
    if info.finish_reasons:
        m.finish_reasons = info.finish_reasons
    if info.input_tokens is not None:
        m.input_tokens = info.input_tokens
    if info.output_tokens is not None:
        m.output_tokens = info.output_tokens


def finish_complete(m: CallMeasurement, info: ResponseInfo) -> None:
    """A response (or stream) that ended normally; an ``error`` object inside it still fails it."""
    apply_info(m, info)
    if info.error_type is not None:
        m.finish(
            stream_end=StreamEnd.ERROR_EVENT,
            stream_error_type=info.error_type,
            error_message=info.error_message,
        )
    else:
        m.finish(stream_end=StreamEnd.COMPLETE)


def finish_response(m: CallMeasurement, result: object) -> None:
    if result is None:
        m.finish(stream_end=StreamEnd.COMPLETE)
        return
    info = ResponseInfo()
    try:  # not guarded(): runs for every call, where a bare try is free
        read_response(result, info)
    except Exception:
        report_internal_error("call_results.read_response")
    finish_complete(m, info)


def _int_attr(obj: object, name: str) -> int | None:
    value = getattr(obj, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None or not hasattr(headers, "get"):
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return parse_retry_after(str(float(milliseconds) / 1000.0))
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


def finish_exception(m: CallMeasurement, exc: BaseException, info: ResponseInfo | None = None) -> None:
    """The call (or its stream) raised ``exc``: SDK errors carry ``status_code`` and a response."""
    status_code: int | None = None
    retry_after_s: float | None = None
    with guarded("call_results.finish_exception"):
        if info is not None:
            apply_info(m, info)
        status_code = _int_attr(exc, "status_code")
        if status_code is not None:
            retry_after_s = _retry_after(exc)
    m.finish(status_code=status_code, exception=exc, retry_after_s=retry_after_s)


def finish_cancelled(m: CallMeasurement, info: ResponseInfo | None) -> None:
    """The caller closed or dropped a stream before its end. A stream whose model had already told
    its finish reason (or sent its terminal event) is complete: only the tail was not read."""
    if info is not None and (info.terminal or info.finish_reasons):
        finish_complete(m, info)
        return
    if info is not None:
        apply_info(m, info)
    m.finish(stream_end=StreamEnd.CANCELLED)


class DecoratedCallStep(CallStep):
    """A step of a decorated call: an SDK error also carries the status code and ``Retry-After``."""

    __slots__ = ()

    def raised(self, m: CallMeasurement, exc_type: type[BaseException] | None, exc: BaseException) -> None:
        finish_exception(m, exc)
