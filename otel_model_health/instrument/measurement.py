"""One model call → one span, the GenAI metrics, and one ``CallResult`` recorded (innermost call wins).

Both front-ends (``transport/``, ``decorators/``) drive a ``CallMeasurement``: ``start_call`` when the
call begins, ``activate``/``deactivate`` around the part that runs in the caller's context (so nested
calls see it as their parent), response details as they become known, and ``finish`` exactly once.

``finish`` builds the call's ``CallResult`` once; the span and the registry both read it. Its error
message is scrubbed here, once: the span, the registry and everything that reads the registry
(snapshots, transitions, ``/health``, Sentry) get the scrubbed text.

Innermost wins: a measurement started while another is active remembers it as its parent. When a
measurement records an outcome, every ancestor is marked as having a counted descendant; an ancestor so
marked still ends its span but neither records to the registry nor emits the GenAI metrics, so an SDK
retry seen by the transport is not counted again by an enclosing decorator.

Over 400 lines on purpose: ``CallMeasurement`` is one call's state (span, timings, response fields,
parent link) and the three writers of its result (span, registry, histograms) read all of it.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Mapping, Sequence
from functools import partial
from timeit import default_timer
from typing import TYPE_CHECKING, Final, TypedDict, Unpack

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from .. import semconv
from .._internal import guarded, report_internal_error
from ..health.types import CallResult
from ..keys import MAX_MODEL_LENGTH, ModelKey, clean_text
from ..outcomes import MODEL_NOT_FOUND, Classification, Outcome, StreamEnd, not_the_models_failure
from ..redact import scrub
from . import deferred, error_text
from .instruments import Instruments

if TYPE_CHECKING:
    from ..health.breaker import Permit

_ACTIVE_KEY: Final = otel_context.create_key("otel_model_health.active_call")
# The Context key under which the API keeps the current span (made unique at import by create_key), read
# through the public API: activate() sets span and call in one Context copy instead of four.
_SPAN_KEY: Final = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, otel_context.Context())))
_MAX_STACKTRACE: Final = 16_384
_MAX_TEXT_ATTRIBUTE: Final = 256


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` of an exception. Never raises: ``__str__`` is the exception author's code."""
    name = type(exc).__name__
    try:
        return f"{name}: {exc}"
    except Exception:
        return name


def current_call() -> CallMeasurement | None:
    value = otel_context.get_value(_ACTIVE_KEY)
    return value if isinstance(value, CallMeasurement) else None


class CallEnd(TypedDict, total=False):
    """How a call ended, as its front-end saw it: the keywords of ``CallMeasurement.finish``."""

    status_code: int | None
    exception: BaseException | None
    stream_end: StreamEnd | None
    stream_error_type: str | None
    error_message: str | None  # raw: cleaned of request content and scrubbed by the measurement
    retry_after_s: float | None
    classification: Classification | None  # given by a caller that classified the call itself


class CallMeasurement:
    """The measurement of one model call. Never raises: internal errors are reported and swallowed.

    ``operation_name`` is the GenAI ``gen_ai.operation.name`` (``chat``, ``embeddings`` ...);
    ``health_operation`` is ``model_health.operation`` (``inference`` | ``health_check``)."""

    __slots__ = (
        "_counted_descendant",
        "_done",
        "_finish_once",
        "_first_chunk_s",
        "_inst",
        "_parent",
        "_started_at",
        "_t0",
        "extra_metric_attributes",
        "finish_reasons",
        "health_operation",
        "input_tokens",
        "key",
        "operation_name",
        "output_tokens",
        "permit",
        "request_content",
        "resend_count",
        "response_id",
        "response_model",
        "server_address",
        "server_port",
        "span",
    )

    def __init__(
        self,
        inst: Instruments,
        *,
        key: ModelKey,
        operation_name: str,
        health_operation: str,
        server_address: str | None,
        server_port: int | None,
        stream: bool | None,
        attributes: Mapping[str, AttributeValue] | None,
        parent: CallMeasurement | None,
    ) -> None:
        self._inst = inst
        self.key = key
        self.operation_name = operation_name
        self.health_operation = health_operation
        self.server_address = server_address
        self.server_port = server_port
        self._parent = parent
        self._counted_descendant = False
        self._done = False
        self._finish_once = threading.Lock()
        self._first_chunk_s: float | None = None
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: Sequence[str] | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.resend_count: int | None = None
        # Set by the front-end: the request's content, read only if an error text has to be cleaned of it.
        self.request_content: error_text.ContentSource | None = None
        self.extra_metric_attributes: Mapping[str, AttributeValue] | None = None
        self.permit: Permit | None = None  # a HALF_OPEN trial slot taken by enforcement for this call

        span_attributes: dict[str, AttributeValue] = {
            semconv.GEN_AI_OPERATION_NAME: operation_name,
            semconv.GEN_AI_PROVIDER_NAME: key.provider,
            semconv.GEN_AI_REQUEST_MODEL: key.model,
            semconv.MH_OPERATION: health_operation,
            semconv.MH_GATEWAY: key.gateway,
        }
        if server_address is not None:
            span_attributes[semconv.SERVER_ADDRESS] = server_address
        if server_port is not None:
            span_attributes[semconv.SERVER_PORT] = server_port
        if stream is not None:
            span_attributes[semconv.GEN_AI_REQUEST_STREAM] = stream
        if attributes:
            span_attributes.update(attributes)
        self.span = inst.tracer.start_span(
            f"{operation_name} {key.model}", kind=SpanKind.CLIENT, attributes=span_attributes
        )
        self._started_at = inst.recorder.now()
        self._t0 = default_timer()

    # -- context ---------------------------------------------------------------------------------------
    # A plain try in activate / deactivate: stream proxies call them around every item they read.
    def activate(self) -> object | None:
        """Make this call's span current (and this call the parent of nested ones); returns a token for
        ``deactivate``, None if that failed (the call then runs with the caller's context)."""
        try:
            current = otel_context.get_current()
            values = otel_context.Context({**current, _SPAN_KEY: self.span, _ACTIVE_KEY: self})
            return otel_context.attach(values)
        except Exception:
            report_internal_error("measurement.activate")
            return None

    @staticmethod
    def deactivate(token: object | None) -> None:
        if token is None:
            return
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception:
            report_internal_error("measurement.deactivate")

    # -- progress --------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._done

    @property
    def parent(self) -> CallMeasurement | None:
        """The enclosing measurement, if this call started inside one."""
        return self._parent

    @property
    def instruments(self) -> Instruments:
        return self._inst

    def first_chunk(self) -> None:
        if self._first_chunk_s is None:
            self._first_chunk_s = default_timer() - self._t0

    # -- end -------------------------------------------------------------------------------------------
    def finish(self, **end: Unpack[CallEnd]) -> None:
        """End the span, record the outcome and the metrics. Only the first call has an effect; it
        never raises."""
        # Atomic test-and-set (a finaliser on another thread may finish the same call): a non-blocking
        # acquire of a lock that is never released cannot wait, so it cannot deadlock either.
        if not self._finish_once.acquire(blocking=False):
            return
        self._done = True
        if deferred.collecting:
            deferred.defer(partial(self._end, end))
            return
        self._end(end)
        if not deferred.idle():
            deferred.run_deferred()

    def _end(self, end: CallEnd) -> None:
        try:  # not guarded(): runs for every call, where a bare try is free
            self._finish(end)
        except Exception:
            report_internal_error("measurement.finish")
            # Our code failed part-way: the span must still end.
            with guarded("measurement.finish.end"):
                if self.span.is_recording():
                    self.span.end()

    def _finish(self, end: CallEnd) -> None:
        latency_s = default_timer() - self._t0
        status_code = end.get("status_code")
        exception = end.get("exception")
        inst = self._inst
        classification = end.get("classification")
        if classification is None:
            classification = inst.classify(
                status_code=status_code,
                exception=exception,
                stream_end=end.get("stream_end"),
                stream_error_type=end.get("stream_error_type"),
            )
        if classification.error_type == MODEL_NOT_FOUND:  # checked first: no closure on other calls
            key = self.key
            classification = not_the_models_failure(
                classification,
                health_operation=self.health_operation,
                has_succeeded=lambda: inst.recorder.has_succeeded(key),
            )
        outcome, error_type = classification
        message = end.get("error_message")
        description = content = None
        if exception is not None or message:
            message, description, content = self._error_text(exception, message)
        self._clean_response_fields()
        span = self.span
        result = CallResult(
            outcome,
            self.health_operation,
            error_type,
            message if outcome is not Outcome.SUCCESS else None,
            status_code,
            latency_s,
            self._started_at,
            end.get("retry_after_s"),
            span.get_span_context(),
            self._first_chunk_s,
        )
        if span.is_recording():
            self._set_span_result(span, result, exception, description, content)
        span.end()

        if not self._counted_descendant:
            parent = self._parent
            while parent is not None:
                parent._counted_descendant = True
                parent = parent._parent
            if outcome is Outcome.REJECTED:
                return  # never recorded and no GenAI metrics: the call was not made (enforcement.py)
            inst.recorder.record_result(self.key, result)
            # After the record: a key the registry now tracks gets its own metric series.
            self._record_metrics(latency_s, error_type)

    def _error_text(
        self, exception: BaseException | None, message: str | None
    ) -> tuple[str | None, str | None, error_text.RequestContent | None]:
        """The call's error message, without the request's content (capture off: ``error_text``) and
        scrubbed, once: the span, the registry and the registry's readers share it. Also the exception's
        scrubbed ``Type: message`` when the message is made from it, and the request's content."""
        content = error_text.load(self.request_content) if self.request_content is not None else None
        if message is None and exception is not None:
            raw = describe_exception(exception) if content is None else content.describe(exception)
            description = scrub(raw)
            return description, description, content
        if message and content is not None:
            message = content.clean(message) or None
        return (scrub(message) if message else None), None, content

    def _clean_response_fields(self) -> None:
        """Response fields come from the server (or a hostile one): printable and bounded, like keys."""
        model = self.response_model
        if model is not None and not (model.isprintable() and len(model) <= MAX_MODEL_LENGTH):
            self.response_model = clean_text(model, MAX_MODEL_LENGTH)
        response_id = self.response_id
        if response_id is not None and not (
            response_id.isprintable() and len(response_id) <= _MAX_TEXT_ATTRIBUTE
        ):
            self.response_id = clean_text(response_id, _MAX_TEXT_ATTRIBUTE)
        reasons = self.finish_reasons
        if reasons and not all(isinstance(r, str) and r.isprintable() for r in reasons):
            self.finish_reasons = [clean_text(r, _MAX_TEXT_ATTRIBUTE) for r in reasons]

    def _set_span_result(
        self,
        span: trace.Span,
        result: CallResult,
        exception: BaseException | None,
        exception_description: str | None,
        content: error_text.RequestContent | None,
    ) -> None:
        """The result on the span. ``exception_description`` is the scrubbed ``Type: message`` of
        ``exception`` when the message was made from it (its message part is then reused)."""
        outcome = result.outcome
        error_type = result.error_type
        status_code = result.status_code
        attributes: dict[str, AttributeValue] = {semconv.MH_OUTCOME: outcome.value}
        if self.response_model is not None:
            attributes[semconv.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.response_id is not None:
            attributes[semconv.GEN_AI_RESPONSE_ID] = self.response_id
        if self.finish_reasons:
            attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = list(self.finish_reasons)
        if self.input_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] = self.input_tokens
        if self.output_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = self.output_tokens
        if status_code is not None:
            attributes[semconv.HTTP_RESPONSE_STATUS_CODE] = status_code
        if self.resend_count:
            attributes[semconv.HTTP_REQUEST_RESEND_COUNT] = self.resend_count
        if error_type is not None:
            attributes[semconv.ERROR_TYPE] = error_type
        if len(attributes) == 1:
            # Only the outcome (a decorated call whose result told nothing more): the SDK's set_attribute
            # skips the two ABC isinstance checks set_attributes makes on the mapping.
            span.set_attribute(semconv.MH_OUTCOME, outcome.value)
        else:
            span.set_attributes(attributes)
        if exception is not None:
            with guarded("measurement.record_exception"):  # the outcome must still be recorded
                self._record_exception(span, exception, exception_description, content)
        if (
            outcome is Outcome.FAILURE
            or outcome is Outcome.RATE_LIMITED
            or outcome is Outcome.REJECTED
            or (outcome is Outcome.NEUTRAL and status_code is not None and status_code >= 400)
        ):
            span.set_status(Status(StatusCode.ERROR, result.error_message or error_type))

    @staticmethod
    def _record_exception(
        span: trace.Span,
        exception: BaseException,
        description: str | None,
        content: error_text.RequestContent | None,
    ) -> None:
        # A provider may echo a key back in its error message; the message also ends the stack trace.
        stacktrace = "".join(traceback.format_exception(exception))
        if content is not None:
            stacktrace = content.clean_stacktrace(exception, stacktrace)
        if description is not None:
            message = description.partition(": ")[2]
        elif content is None:
            message = scrub(describe_exception(exception).partition(": ")[2])
        else:
            message = scrub(content.exception_message(exception))
        span.record_exception(
            exception,
            attributes={
                semconv.EXCEPTION_MESSAGE: message,
                semconv.EXCEPTION_STACKTRACE: scrub(stacktrace, max_length=_MAX_STACKTRACE),
            },
        )

    def _record_metrics(self, latency_s: float, error_type: str | None) -> None:
        inst = self._inst
        key = self.key
        model = inst.request_model_attribute(key)
        attributes: dict[str, AttributeValue] = {
            semconv.GEN_AI_OPERATION_NAME: self.operation_name,
            semconv.GEN_AI_PROVIDER_NAME: key.provider,
            semconv.GEN_AI_REQUEST_MODEL: model,
            semconv.MH_GATEWAY: key.gateway,
        }
        if self.response_model is not None:
            attributes[semconv.GEN_AI_RESPONSE_MODEL] = (
                inst.response_model_attribute(self.response_model)
                if model is not semconv.OTHER_VALUE
                else semconv.OTHER_VALUE
            )
        if self.server_address is not None:
            attributes[semconv.SERVER_ADDRESS] = self.server_address
        if self.server_port is not None:
            attributes[semconv.SERVER_PORT] = self.server_port
        if self.extra_metric_attributes:
            attributes.update(self.extra_metric_attributes)
        if error_type is not None:
            attributes[semconv.ERROR_TYPE] = error_type
        inst.duration.record(latency_s, attributes)
        if self._first_chunk_s is not None:
            inst.ttfc.record(self._first_chunk_s, attributes)
        if error_type is None and (self.input_tokens is not None or self.output_tokens is not None):
            token_attributes = dict(attributes)
            if self.input_tokens is not None:
                token_attributes[semconv.GEN_AI_TOKEN_TYPE] = semconv.TOKEN_TYPE_INPUT
                inst.tokens.record(self.input_tokens, token_attributes)
            if self.output_tokens is not None:
                token_attributes[semconv.GEN_AI_TOKEN_TYPE] = semconv.TOKEN_TYPE_OUTPUT
                inst.tokens.record(self.output_tokens, token_attributes)


def start_call(
    inst: Instruments,
    *,
    key: ModelKey,
    operation_name: str,
    health_operation: str | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
    stream: bool | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> CallMeasurement | None:
    """Begin measuring a model call; None when instrumentation is suppressed or our code failed
    (the caller then runs the call unobserved).

    Without ``health_operation`` the call inherits the enclosing call's (so the transport's attempts
    inside a ``@probe`` are health checks), else ``inference``."""
    try:  # not guarded(): runs for every call, where a bare try is free
        if not deferred.idle():
            deferred.run_deferred()
        ctx = otel_context.get_current()  # read once for both keys
        if ctx.get(_SUPPRESS_INSTRUMENTATION_KEY):
            return None
        parent = ctx.get(_ACTIVE_KEY)
        if not isinstance(parent, CallMeasurement):
            parent = None
        if health_operation is None:
            health_operation = parent.health_operation if parent is not None else semconv.OPERATION_INFERENCE
        return CallMeasurement(
            inst,
            key=key,
            operation_name=operation_name,
            health_operation=health_operation,
            server_address=server_address,
            server_port=server_port,
            stream=stream,
            attributes=attributes,
            parent=parent,
        )
    except Exception:
        report_internal_error("measurement.start")
        return None
