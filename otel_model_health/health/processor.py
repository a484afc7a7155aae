"""ModelHealthSpanProcessor: feeds the registry from GenAI spans of *other* instrumentations.

Anthropic's own ``anthropic.messages.create`` spans, opentelemetry-instrumentation-openai(-v2), OpenLLMetry
and the like all describe model calls; this processor turns each such span into one ``record()``.

It skips our own spans (they carry ``model_health.outcome``: our instrumentation already recorded them)
and the ``model_health.incident`` span. "Innermost model call wins": spans end child-first, so when a span
is counted (or is one of ours) its parent's span id is remembered as "has a counted descendant"; when a
span in that set ends it is not counted, and the mark moves on to its own parent. The mark passes through
any span, GenAI or not (an HTTP span of another instrumentation between two model spans). The set is an
LRU bounded to ``max_tracked_spans`` ids, so a parent that never ends cannot grow memory.

Limit: spans dropped by the sampler never reach a processor. That is why our own instrumentation records
into the registry directly instead of relying on this processor; health from foreign spans is only as
complete as their sampling.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanContext, StatusCode

from .._internal import report_internal_error
from ..hosts import HostResolver, route_key
from ..keys import DIRECT_GATEWAY, MAX_MODEL_LENGTH, ModelKey
from ..outcomes import SpanClassifier, classify_span
from ..semconv import (
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_SYSTEM_DEPRECATED,
    HTTP_RESPONSE_STATUS_CODE,
    MH_GATEWAY,
    MH_OUTCOME,
    OPERATION_INFERENCE,
    SERVER_ADDRESS,
    SPAN_INCIDENT,
    URL_FULL,
)
from .types import CallResult

if TYPE_CHECKING:
    from .registry import HealthRegistry

DEFAULT_MAX_TRACKED_SPANS: Final = 10_000
_MAX_CACHED_KEYS: Final = 1024

# GenAI operations that are not a model call (agent and tool spans): never counted themselves.
_NOT_MODEL_CALLS: Final = frozenset({"execute_tool", "invoke_agent", "create_agent"})

_new_tuple: Final = tuple.__new__
_ERROR: Final = StatusCode.ERROR  # a module constant: an enum member read through its class costs a lookup
_NO_ATTRIBUTES: Final[Mapping[str, Any]] = MappingProxyType({})
# The SDK's property: ``MappingProxyType(self._attributes or {})``.
_READABLE_SPAN_ATTRIBUTES: Final = ReadableSpan.__dict__["attributes"]

# Processors alive in this process, so a forked child can give each a fresh lock.
_PROCESSORS: Final[weakref.WeakSet[ModelHealthSpanProcessor]] = weakref.WeakSet()


def _span_attributes(span: ReadableSpan) -> Mapping[str, Any]:
    """The span's attributes, to read only.

    ``span.attributes`` wraps the SDK's ``BoundedAttributes`` in a ``MappingProxyType``: each lookup then
    runs ``Mapping.get`` in Python and raises a KeyError on every miss, most of what ``on_end`` cost. An
    SDK span keeps them in a plain dict (``_attributes._dict``, not written once the span ended): read
    that directly. Any other shape (another SDK version, a class with its own ``attributes``) takes the
    public API.
    """
    if getattr(type(span), "attributes", None) is _READABLE_SPAN_ATTRIBUTES:
        raw = getattr(span, "_attributes", None)
        if type(raw) is BoundedAttributes:
            values = getattr(raw, "_dict", None)
            if type(values) is dict:
                return values
    return span.attributes or _NO_ATTRIBUTES


class ModelHealthSpanProcessor(SpanProcessor):
    """Records GenAI spans of other instrumentations into a ``HealthRegistry``. Never raises."""

    def __init__(
        self,
        registry: HealthRegistry,
        *,
        classifier: SpanClassifier = classify_span,
        max_tracked_spans: int = DEFAULT_MAX_TRACKED_SPANS,
    ) -> None:
        self._registry = registry
        self._classifier = classifier
        self._max_tracked = max(1, int(max_tracked_spans))
        # span ids that have a counted descendant: an ordered set with LRU eviction (values always True,
        # so pop(span_id, False) answers membership and removes in one step)
        self._counted_below: OrderedDict[int, bool] = OrderedDict()
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str, str | None, str | None], ModelKey] = {}
        self._resolver = HostResolver()
        _PROCESSORS.add(self)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do at start: a span is judged when it ends."""

    def on_end(self, span: ReadableSpan) -> None:
        try:
            self._on_end(span)
        except Exception:
            report_internal_error("ModelHealthSpanProcessor.on_end")

    def _on_end(self, span: ReadableSpan) -> None:
        # Every span of the application comes through here: each property and attribute is read once.
        if span.name == SPAN_INCIDENT:
            return  # our reverse link to Sentry: transparent
        context = span.context
        span_id = context.span_id if context is not None else None
        parent = span.parent
        parent_id = parent.span_id if parent is not None else None
        attributes = _span_attributes(span)

        has_counted_descendant = False
        if span_id:
            with self._lock:
                has_counted_descendant = self._counted_below.pop(span_id, False)
        if MH_OUTCOME in attributes or has_counted_descendant:
            # Ours (already recorded), or a span around a call counted further down: pass the mark up.
            self._mark(parent_id)
            return
        if not self._is_model_call(attributes):
            return
        if self._record(span, context, attributes):
            self._mark(parent_id)

    def _mark(self, parent_id: int | None) -> None:
        if not parent_id:
            return
        with self._lock:
            marks = self._counted_below
            marks[parent_id] = True
            marks.move_to_end(parent_id)
            while len(marks) > self._max_tracked:
                marks.popitem(last=False)

    @staticmethod
    def _is_model_call(attributes: Mapping[str, Any]) -> bool:
        operation = attributes.get(GEN_AI_OPERATION_NAME)
        if operation in _NOT_MODEL_CALLS:
            return False
        return (
            operation is not None
            or GEN_AI_REQUEST_MODEL in attributes
            or GEN_AI_PROVIDER_NAME in attributes
            or GEN_AI_SYSTEM_DEPRECATED in attributes
        )

    def _record(self, span: ReadableSpan, context: SpanContext | None, attributes: Mapping[str, Any]) -> bool:
        get = attributes.get
        model = get(GEN_AI_REQUEST_MODEL)
        if not isinstance(model, str) or not model:
            model = get(GEN_AI_RESPONSE_MODEL)
            if not isinstance(model, str) or not model:
                return False  # not attributable to a model: nothing to hold against anyone
        provider = get(GEN_AI_PROVIDER_NAME)
        if not isinstance(provider, str) or not provider:
            provider = get(GEN_AI_SYSTEM_DEPRECATED)
            if not isinstance(provider, str) or not provider:
                provider = "unknown"
        gateway = get(MH_GATEWAY)
        if not isinstance(gateway, str) or not gateway:
            gateway = None
        host = get(SERVER_ADDRESS)
        if not isinstance(host, str) or not host:
            host = _host_of(get(URL_FULL))
        key = self._keys.get((provider, model, host, gateway))
        if key is None:
            key = self._new_key(provider, model, host, gateway)

        status = span.status
        status_is_error = status is not None and status.status_code is _ERROR
        classifier = self._classifier
        # The default classifier only reads; another one gets the read-only view it always had.
        outcome, error_type = classifier(
            attributes if classifier is classify_span else MappingProxyType(attributes),
            status_is_error=status_is_error,
        )

        registry = self._registry
        start, end = span.start_time, span.end_time
        latency_s = (end - start) / 1e9 if start is not None and end is not None and end >= start else None
        status_code = get(HTTP_RESPONSE_STATUS_CODE)
        # tuple.__new__ directly: a NamedTuple's own __new__ is a Python function (this runs per span).
        result: CallResult = _new_tuple(
            CallResult,
            (
                outcome,
                OPERATION_INFERENCE,
                error_type,
                status.description if status_is_error else None,
                status_code if isinstance(status_code, int) and not isinstance(status_code, bool) else None,
                latency_s,
                registry.to_monotonic(start / 1e9) if start is not None else None,
                None,
                context,
                None,
            ),
        )
        registry.record_result(key, result)
        return True

    def _new_key(self, provider: str, model: str, host: str | None, gateway: str | None) -> ModelKey:
        # The same host table as the transport's, so a call both see is one key (a self-hosted or proxy
        # host gives the same gateway). Normalising a key is a third of on_end's cost and the same few
        # models repeat: cached, and cleared when full, so many distinct models only cost a re-computation.
        if host is not None:
            key = route_key(self._resolver, host, model, fallback_provider=provider, gateway=gateway)
        else:
            key = ModelKey(provider=provider, model=model, gateway=gateway or DIRECT_GATEWAY)
        if len(self._keys) >= _MAX_CACHED_KEYS:
            self._keys = {}
        if len(model) <= MAX_MODEL_LENGTH:
            self._keys[(provider, model, host, gateway)] = key
        return key

    def tracked_span_count(self) -> int:
        """How many span ids are remembered as having a counted descendant (bounded)."""
        return len(self._counted_below)

    def shutdown(self) -> None:
        with self._lock:
            self._counted_below.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def _reinit_lock(self) -> None:
        self._lock = threading.Lock()


def _host_of(url: object) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    try:
        return urlsplit(url).hostname or None
    except ValueError:
        return None


def _after_fork_in_child() -> None:
    for processor in list(_PROCESSORS):
        processor._reinit_lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
