"""Everything a decorated function's calls share, resolved once at decoration: the model key (or
how to find it in a call's arguments), the span's fixed attributes, the instruments.

``CallPlan.start`` is the per-call part: it builds the ``ModelKey`` (cached per model string) and
starts the measurement. It raises only ``ModelUnavailableError``, when enforcement refuses the call (the
decorated function is then not called); any other error, the user's callables' included, is reported and
the call runs unobserved or with ``unknown`` in the failing part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Final, TypeAlias

from opentelemetry import metrics, trace
from opentelemetry.util.types import AttributeValue

from ... import enforcement, semconv
from ..._internal import guarded, report_internal_error
from ...health.types import HealthRecorder
from ...keys import DIRECT_GATEWAY, MAX_MODEL_LENGTH, UNKNOWN, ModelKey
from ..instruments import InstrumentsRef
from ..measurement import CallMeasurement, start_call
from .call_args import ArgSpec, CallArgs, from_arguments, unwrap_descriptor

KeyPart: TypeAlias = str | Callable[[CallArgs], object] | None
AttributesHook: TypeAlias = Callable[[CallArgs], Mapping[str, AttributeValue] | None]

# Top-level packages whose functions name their provider (``monitor(client.chat.completions.create)``).
_PROVIDER_MODULES: Final = {
    "openai": semconv.PROVIDER_OPENAI,
    "anthropic": semconv.PROVIDER_ANTHROPIC,
    "mistralai": semconv.PROVIDER_MISTRAL,
    "groq": semconv.PROVIDER_GROQ,
    "cohere": semconv.PROVIDER_COHERE,
}
_MAX_CACHED_KEYS: Final = 1024
_MODEL_PARAM: Final = "model"
_STREAM_PARAM: Final = "stream"


def provider_of_module(func: object) -> str:
    module = getattr(unwrap_descriptor(func), "__module__", None) or ""
    return _PROVIDER_MODULES.get(module.partition(".")[0], UNKNOWN)


class CallPlan:
    __slots__ = (
        "_attributes",
        "_enforce",
        "_fixed_parts",
        "_gateway",
        "_health_operation",
        "_keys",
        "_model",
        "_model_from_args",
        "_needs_call_args",
        "_operation_name",
        "_provider",
        "_ref",
        "_spec",
        "_static_key",
        "_stream_from_args",
    )

    def __init__(
        self,
        wrapped: Any,
        *,
        model: KeyPart,
        provider: KeyPart,
        gateway: KeyPart,
        operation_name: str,
        health_operation: str,
        attributes: AttributesHook | None,
        registry: HealthRecorder | None,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
        enforce: bool | None = None,
    ) -> None:
        spec = self._spec = ArgSpec(wrapped)
        self._enforce = enforce
        self._operation_name = operation_name  # gen_ai.operation.name
        self._health_operation = health_operation  # model_health.operation
        self._attributes = attributes
        self._ref = InstrumentsRef(
            registry=registry, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
        # No model given: the call's own `model` argument, if the signature can carry one.
        self._model_from_args = model is None and spec.has(_MODEL_PARAM)
        self._model = model if model is not None else UNKNOWN
        self._provider = provider if provider is not None else provider_of_module(wrapped)
        self._gateway = gateway if gateway is not None else DIRECT_GATEWAY
        self._stream_from_args = spec.has(_STREAM_PARAM)
        self._needs_call_args = attributes is not None or any(
            callable(part) for part in (self._model, self._provider, self._gateway)
        )
        self._fixed_parts = not callable(self._provider) and not callable(self._gateway)
        self._keys: dict[object, ModelKey] = {}
        self._static_key: ModelKey | None = None
        if not self._model_from_args and not self._needs_call_args:
            self._static_key = ModelKey(provider=self._provider, model=self._model, gateway=self._gateway)

    def _part(self, part: KeyPart, call: CallArgs | None, where: str) -> object:
        if not callable(part):
            return part
        with guarded(where):
            value = part(call)  # type: ignore[arg-type]
            return value if value is not None else UNKNOWN
        return UNKNOWN

    def _key(self, call: CallArgs | None, instance: object, args: tuple[Any, ...], kwargs: Any) -> ModelKey:
        if self._model_from_args:
            model: object = self._spec.lookup(_MODEL_PARAM, instance, args, kwargs, None)
            if model is None:
                model = UNKNOWN
        else:
            model = self._part(self._model, call, "monitor.model")
        provider: object
        gateway: object
        cache_key: object
        if self._fixed_parts:  # the common case: only the model varies, so it alone keys the cache
            provider, gateway = self._provider, self._gateway
            cache_key = model
        else:
            provider = self._part(self._provider, call, "monitor.provider")
            gateway = self._part(self._gateway, call, "monitor.gateway")
            cache_key = (model, provider, gateway)
        try:
            key = self._keys.get(cache_key)
        except TypeError:  # an unhashable model value
            return ModelKey(provider=provider, model=model, gateway=gateway)
        if key is None:
            key = ModelKey(provider=provider, model=model, gateway=gateway)
            # Cache only ordinary model strings: a huge one from user input must not stay alive here.
            if (
                len(self._keys) < _MAX_CACHED_KEYS
                and isinstance(model, str)
                and len(model) <= MAX_MODEL_LENGTH
            ):
                self._keys[cache_key] = key
        return key

    def _user_attributes(self, call: CallArgs) -> Mapping[str, AttributeValue] | None:
        hook = self._attributes
        if hook is None:
            return None
        with guarded("monitor.attributes"):
            extra = hook(call)
            if extra is None or isinstance(extra, Mapping):
                return extra
            raise TypeError(f"attributes hook returned {type(extra).__name__}, not a mapping")
        return None

    def start(
        self, instance: object, args: tuple[Any, ...], kwargs: Any, stream: bool | None = None
    ) -> CallMeasurement | None:
        try:  # not guarded(): runs for every call, where a bare try is free
            call = CallArgs(self._spec, instance, args, kwargs) if self._needs_call_args else None
            key = self._static_key
            if key is None:
                key = self._key(call, instance, args, kwargs)
            extra = self._user_attributes(call) if call is not None else None
            if stream is None and self._stream_from_args:
                value = self._spec.lookup(_STREAM_PARAM, instance, args, kwargs, None)
                stream = value if isinstance(value, bool) else None
            m = start_call(
                self._ref.get(),
                key=key,
                operation_name=self._operation_name,
                health_operation=self._health_operation,
                stream=stream,
                attributes=extra,
            )
            if m is not None:  # read only if an error text has to be cleaned of the call's content
                m.request_content = partial(from_arguments, self._spec, instance, args, kwargs)
        except Exception:
            report_internal_error("monitor.start")
            return None
        if m is not None and enforcement.enforcing(self._enforce):
            enforcement.admit_or_raise(m)  # a refusal raises ModelUnavailableError, before the call
        return m
