"""One model call → one span, the GenAI metrics, and one ``registry.record`` (innermost call wins).

Both the decorators and the transport drive a ``CallMeasurement``: ``start_call`` when the call begins,
``activate``/``deactivate`` around the part that runs in the caller's context (so nested calls see it as
their parent), response details as they become known, and ``finish`` exactly once.

Innermost wins: a measurement started while another is active remembers it as its parent. When a
measurement records an outcome, every ancestor is marked as having a counted descendant; an ancestor so
marked still ends its span but neither records to the registry nor emits the GenAI metrics, so an SDK
retry seen by the transport is not counted again by an enclosing decorator.
"""

from __future__ import annotations

import functools
import gc
import queue
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from timeit import default_timer
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from .. import defaults, semconv
from .._internal import report_internal_error
from .._version import __version__
from ..health.types import CallResult, HealthRecorder
from ..keys import MAX_MODEL_LENGTH, ModelKey, clean_text
from ..outcomes import (
    MODEL_NOT_FOUND,
    CallClassifier,
    Classification,
    Outcome,
    StreamEnd,
    not_the_models_failure,
)
from ..redact import scrub
from . import error_text

_ACTIVE_KEY: Final = otel_context.create_key("otel_model_health.active_call")
# The Context key under which the API keeps the current span (made unique at import by create_key), read
# through the public API: activate() sets span and call in one Context copy instead of four.
_SPAN_KEY: Final = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, otel_context.Context())))
_MAX_STACKTRACE: Final = 16_384


# A finalizer run by the cyclic garbage collector (an abandoned stream's ``__del__``, a generator closed
# by the GC) runs in whatever thread allocated at that moment, possibly inside one of our own locked
# sections (the registry's lock, the span processor's) or an SDK's: ending a call there would take that
# non-reentrant lock again and deadlock the thread, and with it every later call. So ``finish`` called
# during a collection is queued (SimpleQueue.put is reentrant) and run at the next safe point: the next
# ``start_call``, or the next ``finish`` outside a collection.
_collecting = False
_deferred: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()


def _gc_phase(phase: str, _info: Mapping[str, int]) -> None:
    global _collecting
    _collecting = phase == "start"


gc.callbacks.append(_gc_phase)


def run_deferred() -> None:
    """Finish the calls whose end was deferred out of a garbage collection."""
    while not _collecting:
        try:
            job = _deferred.get_nowait()
        except queue.Empty:
            return
        try:
            job()
        except Exception:
            report_internal_error("measurement.deferred")


# Distinct model ids (request and response) given their own metric series, per set of instruments. The
# SDK keeps at most 2,000 series per instrument; a model first seen past this bound is reported as
# `_OTHER`, so hostile model strings cannot crowd out real models' series.
MAX_METRIC_MODELS: Final = 500
_MAX_TEXT_ATTRIBUTE: Final = 256


class Instruments:
    """Tracer, GenAI histograms, recorder and classifier for one set of providers."""

    __slots__ = (
        "classify",
        "duration",
        "metric_models",
        "metric_response_models",
        "recorder",
        "tokens",
        "tracer",
        "ttfc",
    )

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider,
        meter_provider: metrics.MeterProvider,
        recorder: HealthRecorder,
        classify: CallClassifier,
    ) -> None:
        self.tracer = tracer_provider.get_tracer(semconv.SCOPE_NAME, __version__)
        meter = meter_provider.get_meter(semconv.SCOPE_NAME, __version__)
        self.duration = meter.create_histogram(
            semconv.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS),
        )
        self.tokens = meter.create_histogram(
            semconv.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(semconv.TOKEN_BUCKETS),
        )
        self.ttfc = meter.create_histogram(
            semconv.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS),
        )
        self.recorder = recorder
        self.classify = classify
        self.metric_models: set[ModelKey] = set()
        self.metric_response_models: set[str] = set()

    def request_model_attribute(self, key: ModelKey) -> str:
        """The model id on metrics: its own once the registry tracks the key, within the bound."""
        models = self.metric_models
        if key in models:
            return key.model
        if len(models) < MAX_METRIC_MODELS and self.recorder.tracks(key):
            models.add(key)  # set.add is atomic; a race past the bound by a few is harmless
            return key.model
        return semconv.OTHER_VALUE

    def response_model_attribute(self, model: str) -> str:
        models = self.metric_response_models
        if model in models:
            return model
        if len(models) < MAX_METRIC_MODELS:
            models.add(model)
            return model
        return semconv.OTHER_VALUE


# Instruments are cached per (tracer provider, meter provider, recorder, classifier): creating
# instruments is not free and the SDK warns about duplicates. configure() runs rarely, so the cache
# stays tiny.
_instruments_cache: dict[tuple[int, int, int, int], tuple[Any, ...]] = {}


def instruments_for(
    *,
    registry: HealthRecorder | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> Instruments:
    tp = tracer_provider if tracer_provider is not None else defaults.default_tracer_provider()
    mp = meter_provider if meter_provider is not None else defaults.default_meter_provider()
    rec: HealthRecorder = registry if registry is not None else defaults.default_registry()
    classify = defaults.call_classifier()
    cache_key = (id(tp), id(mp), id(rec), id(classify))
    hit = _instruments_cache.get(cache_key)
    if hit is not None:
        instruments: Instruments = hit[0]
        return instruments
    instruments = Instruments(tracer_provider=tp, meter_provider=mp, recorder=rec, classify=classify)
    # Keep the providers alive with the entry so their ids cannot be reused by other objects.
    _instruments_cache[cache_key] = (instruments, tp, mp, rec, classify)
    return instruments


class InstrumentsRef:
    """Resolves ``Instruments`` lazily and again whenever ``configure()`` changed the defaults."""

    __slots__ = ("_generation", "_instruments", "_meter_provider", "_registry", "_tracer_provider")

    def __init__(
        self,
        *,
        registry: HealthRecorder | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._registry = registry
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._generation = -1
        self._instruments: Instruments | None = None

    def get(self) -> Instruments:
        instruments = self._instruments
        if instruments is None or self._generation != defaults.generation:
            self._generation = defaults.generation
            instruments = self._instruments = instruments_for(
                registry=self._registry,
                tracer_provider=self._tracer_provider,
                meter_provider=self._meter_provider,
            )
        return instruments


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` of an exception. Never raises: ``__str__`` is the exception author's code."""
    name = type(exc).__name__
    try:
        return f"{name}: {exc}"
    except Exception:
        return name


def suppressed() -> bool:
    """True inside ``suppress_instrumentation()`` (e.g. an exporter's own HTTP calls)."""
    return bool(otel_context.get_value(_SUPPRESS_INSTRUMENTATION_KEY))


def current_call() -> CallMeasurement | None:
    value = otel_context.get_value(_ACTIVE_KEY)
    return value if isinstance(value, CallMeasurement) else None


class CallMeasurement:
    """The measurement of one model call. Never raises: internal errors are reported and swallowed."""

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
        "input_tokens",
        "key",
        "mh_operation",
        "operation_name",
        "output_tokens",
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
        mh_operation: str,
        server_address: str | None,
        server_port: int | None,
        stream: bool | None,
        attributes: Mapping[str, AttributeValue] | None,
        parent: CallMeasurement | None,
    ) -> None:
        self._inst = inst
        self.key = key
        self.operation_name = operation_name
        self.mh_operation = mh_operation
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

        span_attributes: dict[str, AttributeValue] = {
            semconv.GEN_AI_OPERATION_NAME: operation_name,
            semconv.GEN_AI_PROVIDER_NAME: key.provider,
            semconv.GEN_AI_REQUEST_MODEL: key.model,
            semconv.MH_OPERATION: mh_operation,
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

    def first_chunk(self) -> None:
        if self._first_chunk_s is None:
            self._first_chunk_s = default_timer() - self._t0

    # -- end -------------------------------------------------------------------------------------------
    def finish(
        self,
        *,
        status_code: int | None = None,
        exception: BaseException | None = None,
        stream_end: StreamEnd | None = None,
        stream_error_type: str | None = None,
        error_message: str | None = None,
        retry_after_s: float | None = None,
        classification: Classification | None = None,
    ) -> None:
        """End the span, record metrics and the outcome. Only the first call has an effect."""
        # Atomic test-and-set (a finaliser on another thread may finish the same call): a non-blocking
        # acquire of a lock that is never released cannot wait, so it cannot deadlock either.
        if not self._finish_once.acquire(blocking=False):
            return
        self._done = True
        args = (
            status_code,
            exception,
            stream_end,
            stream_error_type,
            error_message,
            retry_after_s,
            classification,
        )
        if _collecting:
            _deferred.put(functools.partial(self._finish_guarded, *args))
            return
        self._finish_guarded(*args)
        if not _deferred.empty():
            run_deferred()

    def _finish_guarded(
        self,
        status_code: int | None,
        exception: BaseException | None,
        stream_end: StreamEnd | None,
        stream_error_type: str | None,
        error_message: str | None,
        retry_after_s: float | None,
        classification: Classification | None,
    ) -> None:
        try:
            self._finish(
                status_code,
                exception,
                stream_end,
                stream_error_type,
                error_message,
                retry_after_s,
                classification,
            )
        except Exception:
            report_internal_error("measurement.finish")
            if self.span.is_recording():
                try:
                    self.span.end()
                except Exception:
                    report_internal_error("measurement.finish.end")

    def _finish(
        self,
        status_code: int | None,
        exception: BaseException | None,
        stream_end: StreamEnd | None,
        stream_error_type: str | None,
        error_message: str | None,
        retry_after_s: float | None,
        classification: Classification | None,
    ) -> None:
        latency_s = default_timer() - self._t0
        inst = self._inst
        if classification is None:
            classification = inst.classify(
                status_code=status_code,
                exception=exception,
                stream_end=stream_end,
                stream_error_type=stream_error_type,
            )
        if classification.error_type == MODEL_NOT_FOUND:
            # A probe names a model the operator depends on: its 404 is always the model's failure.
            classification = not_the_models_failure(
                classification,
                model_known=self.mh_operation == semconv.OPERATION_HEALTH_CHECK
                or inst.recorder.has_succeeded(self.key),
            )
        outcome, error_type = classification
        # Content capture off: error texts leave without the request's content (error_text.py).
        content = None
        if self.request_content is not None and (exception is not None or error_message):
            content = error_text.load(self.request_content)
        if error_message is None and exception is not None:
            error_message = describe_exception(exception) if content is None else content.describe(exception)
        elif error_message and content is not None:
            error_message = content.clean(error_message) or None
        self._clean_response_fields()

        span = self.span
        if span.is_recording():
            self._set_span_result(span, outcome, error_type, status_code, exception, error_message, content)
        span.end()

        counted = not self._counted_descendant
        if counted:
            parent = self._parent
            while parent is not None:
                parent._counted_descendant = True
                parent = parent._parent
            inst.recorder.record_result(
                self.key,
                CallResult(
                    outcome,
                    self.mh_operation,
                    error_type,
                    error_message if outcome is not Outcome.SUCCESS else None,
                    status_code,
                    latency_s,
                    self._started_at,
                    retry_after_s,
                    span.get_span_context(),
                ),
            )
            # After the record: a key the registry now tracks gets its own metric series.
            self._record_metrics(latency_s, error_type)

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
        outcome: Outcome,
        error_type: str | None,
        status_code: int | None,
        exception: BaseException | None,
        error_message: str | None,
        content: error_text.RequestContent | None,
    ) -> None:
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
            # skips the two ABC isinstance checks set_attributes makes on the mapping (~3 us).
            span.set_attribute(semconv.MH_OUTCOME, outcome.value)
        else:
            span.set_attributes(attributes)
        if exception is not None:
            # A provider may echo a key back in its error message; the message also ends the stack trace.
            try:
                stacktrace = "".join(traceback.format_exception(exception))
                if content is None:
                    message = describe_exception(exception).partition(": ")[2]
                else:
                    message = content.exception_message(exception)
                    stacktrace = content.clean_stacktrace(exception, stacktrace)
                span.record_exception(
                    exception,
                    attributes={
                        "exception.message": scrub(message),
                        "exception.stacktrace": scrub(stacktrace, max_length=_MAX_STACKTRACE),
                    },
                )
            except Exception:  # the outcome must still be recorded
                report_internal_error("measurement.record_exception")
        if (
            outcome is Outcome.FAILURE
            or outcome is Outcome.RATE_LIMITED
            or (outcome is Outcome.NEUTRAL and status_code is not None and status_code >= 400)
        ):
            span.set_status(Status(StatusCode.ERROR, scrub(error_message) if error_message else error_type))

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
    mh_operation: str | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
    stream: bool | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> CallMeasurement | None:
    """Begin measuring a model call; None when instrumentation is suppressed or our code failed
    (the caller then runs the call unobserved).

    Without ``mh_operation`` the call inherits the enclosing call's (so the transport's attempts inside a
    ``@probe`` are health checks), else ``inference``."""
    try:
        if not _deferred.empty():
            run_deferred()
        ctx = otel_context.get_current()  # read once for both keys
        if ctx.get(_SUPPRESS_INSTRUMENTATION_KEY):
            return None
        parent = ctx.get(_ACTIVE_KEY)
        if not isinstance(parent, CallMeasurement):
            parent = None
        if mh_operation is None:
            mh_operation = parent.mh_operation if parent is not None else semconv.OPERATION_INFERENCE
        return CallMeasurement(
            inst,
            key=key,
            operation_name=operation_name,
            mh_operation=mh_operation,
            server_address=server_address,
            server_port=server_port,
            stream=stream,
            attributes=attributes,
            parent=parent,
        )
    except Exception:
        report_internal_error("measurement.start")
        return None
