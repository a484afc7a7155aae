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
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from .. import semconv
from .._internal import report_internal_error
from ..keys import DIRECT_GATEWAY, MAX_MODEL_LENGTH, ModelKey
from ..outcomes import SpanClassifier, classify_span

if TYPE_CHECKING:
    from .registry import HealthRegistry

DEFAULT_MAX_TRACKED_SPANS: Final = 10_000
_MAX_CACHED_KEYS: Final = 1024

# GenAI operations that are not a model call (agent and tool spans): never counted themselves.
_NOT_MODEL_CALLS: Final = frozenset({"execute_tool", "invoke_agent", "create_agent"})

# Processors alive in this process, so a forked child can give each a fresh lock.
_PROCESSORS: Final[weakref.WeakSet[ModelHealthSpanProcessor]] = weakref.WeakSet()


def _str_attr(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    if isinstance(value, str) and value:
        return value
    return None


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
        # span ids that have a counted descendant; values unused (an ordered set with LRU eviction)
        self._counted_below: OrderedDict[int, None] = OrderedDict()
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str, str], ModelKey] = {}
        _PROCESSORS.add(self)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do at start: a span is judged when it ends."""

    def on_end(self, span: ReadableSpan) -> None:
        try:
            self._on_end(span)
        except Exception:
            report_internal_error("ModelHealthSpanProcessor.on_end")

    def _on_end(self, span: ReadableSpan) -> None:
        if span.name == semconv.SPAN_INCIDENT:
            return  # our reverse link to Sentry: transparent
        context = span.context
        span_id = context.span_id if context is not None else None
        parent = span.parent
        parent_id = parent.span_id if parent is not None else None
        attributes: Mapping[str, Any] = span.attributes or {}

        has_counted_descendant = False
        if span_id:
            with self._lock:
                if span_id in self._counted_below:
                    del self._counted_below[span_id]
                    has_counted_descendant = True
        if semconv.MH_OUTCOME in attributes or has_counted_descendant:
            # Ours (already recorded), or a span around a call counted further down: pass the mark up.
            self._mark(parent_id)
            return
        if not self._is_model_call(attributes):
            return
        if self._record(span, attributes):
            self._mark(parent_id)

    def _mark(self, parent_id: int | None) -> None:
        if not parent_id:
            return
        with self._lock:
            marks = self._counted_below
            marks[parent_id] = None
            marks.move_to_end(parent_id)
            while len(marks) > self._max_tracked:
                marks.popitem(last=False)

    @staticmethod
    def _is_model_call(attributes: Mapping[str, Any]) -> bool:
        operation = attributes.get(semconv.GEN_AI_OPERATION_NAME)
        if operation in _NOT_MODEL_CALLS:
            return False
        return (
            operation is not None
            or semconv.GEN_AI_REQUEST_MODEL in attributes
            or semconv.GEN_AI_PROVIDER_NAME in attributes
            or semconv.GEN_AI_SYSTEM_DEPRECATED in attributes
        )

    def _record(self, span: ReadableSpan, attributes: Mapping[str, Any]) -> bool:
        model = _str_attr(attributes, semconv.GEN_AI_REQUEST_MODEL) or _str_attr(
            attributes, semconv.GEN_AI_RESPONSE_MODEL
        )
        if model is None:
            return False  # not attributable to a model: nothing to hold against anyone
        provider = (
            _str_attr(attributes, semconv.GEN_AI_PROVIDER_NAME)
            or _str_attr(attributes, semconv.GEN_AI_SYSTEM_DEPRECATED)
            or "unknown"
        )
        gateway = _str_attr(attributes, semconv.MH_GATEWAY) or DIRECT_GATEWAY
        status = span.status
        status_is_error = status is not None and status.status_code is StatusCode.ERROR
        outcome, error_type = self._classifier(attributes, status_is_error=status_is_error)

        registry = self._registry
        start, end = span.start_time, span.end_time
        latency_s = (end - start) / 1e9 if start is not None and end is not None and end >= start else None
        started_at = registry.to_monotonic(start / 1e9) if start is not None else None
        status_code = attributes.get(semconv.HTTP_RESPONSE_STATUS_CODE)
        registry.record(
            self._key(provider, model, gateway),
            outcome,
            operation=semconv.OPERATION_INFERENCE,
            error_type=error_type,
            error_message=status.description if status is not None and status_is_error else None,
            status_code=(
                status_code if isinstance(status_code, int) and not isinstance(status_code, bool) else None
            ),
            latency_s=latency_s,
            started_at=started_at,
            span_context=span.context,
        )
        return True

    def _key(self, provider: str, model: str, gateway: str) -> ModelKey:
        # Normalising a key is a third of on_end's cost; the same few models repeat. Bounded: cleared
        # when full, so many distinct models only cost a re-computation.
        raw = (provider, model, gateway)
        key = self._keys.get(raw)
        if key is None:
            key = ModelKey(provider=provider, model=model, gateway=gateway)
            if len(self._keys) >= _MAX_CACHED_KEYS:
                self._keys = {}
            if len(model) <= MAX_MODEL_LENGTH:
                self._keys[raw] = key
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


def _after_fork_in_child() -> None:
    for processor in list(_PROCESSORS):
        processor._reinit_lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
