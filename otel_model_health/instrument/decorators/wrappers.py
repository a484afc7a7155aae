"""``@monitor`` (inference calls) and ``@probe`` (health checks): one measured model call per call.

Built on ``wrapt.FunctionWrapper``, so the decorated object keeps the original's signature, name,
qualname, doc, ``__wrapped__`` and its ``inspect.is*function`` answers, and binds as the original does
(instance, class and static methods, with the decorator inside or outside ``classmethod`` /
``staticmethod``). The shape of the wrapped callable (plain, ``async def``, generator, async generator)
is found once at decoration and picks the wrapper; what a plain call returns (a response, a stream, a
stream manager, a coroutine) is handled by ``stream_managers.observe_result``.

Transparency: the wrapped call returns, raises (the same exception object, re-raised with a bare
``raise``) and yields exactly what it would undecorated; our telemetry never raises into it.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any, Final, TypedDict, TypeVar, Unpack, overload

import wrapt
from opentelemetry import metrics, trace

from ... import semconv
from ...health.types import HealthRecorder
from .call_args import unwrap_descriptor
from .call_plan import AttributesHook, CallPlan, KeyPart
from .call_results import DecoratedCallStep
from .generators import drive_async_generator, drive_generator
from .stream_managers import observe_result

# Set on every decorated callable: it records its own outcome (HealthMonitor.add reads it). wrapt keeps
# ``_self_`` names on the proxy, not on the wrapped function, and its bound forms read them from there.
MEASURED_MARKER: Final = "_self_otel_model_health_measured"

_F = TypeVar("_F")
Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


def _sync_wrapper(plan: CallPlan) -> Wrapper:
    start = plan.start

    def monitored_call(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        m = start(instance, args, kwargs)
        with DecoratedCallStep(m):
            result = wrapped(*args, **kwargs)
        return result if m is None else observe_result(m, result)

    return monitored_call


def _async_wrapper(plan: CallPlan) -> Wrapper:
    start = plan.start

    async def monitored_call(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        m = start(instance, args, kwargs)
        # The span stays current across the awaits: they suspend this task only, never the caller's
        # code, and the token is detached in the same context it was attached in.
        with DecoratedCallStep(m):
            result = await wrapped(*args, **kwargs)
        return result if m is None else observe_result(m, result)

    return monitored_call


def _generator_wrapper(plan: CallPlan) -> Wrapper:
    start = plan.start

    def monitored_generator(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # Created eagerly, as undecorated: a bad argument raises here, not at the first next().
        gen = wrapped(*args, **kwargs)
        if not isinstance(gen, types.GeneratorType):
            return gen
        return drive_generator(gen, lambda: start(instance, args, kwargs, True))

    return monitored_generator


def _async_generator_wrapper(plan: CallPlan) -> Wrapper:
    start = plan.start

    def monitored_async_generator(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        agen = wrapped(*args, **kwargs)
        if not isinstance(agen, types.AsyncGeneratorType):
            return agen
        return drive_async_generator(agen, lambda: start(instance, args, kwargs, True))

    return monitored_async_generator


def _wrapper_for(wrapped: Any, plan: CallPlan) -> Wrapper:
    func = unwrap_descriptor(wrapped)
    if inspect.isasyncgenfunction(func):
        return _async_generator_wrapper(plan)
    if inspect.isgeneratorfunction(func):
        return _generator_wrapper(plan)
    if inspect.iscoroutinefunction(func):
        return _async_wrapper(plan)
    return _sync_wrapper(plan)


class DecoratorOptions(TypedDict, total=False):
    """The options ``monitor`` and ``probe`` share (declared once; see their docstring)."""

    model: KeyPart
    provider: KeyPart
    gateway: KeyPart
    operation: str  # gen_ai.operation.name
    attributes: AttributesHook | None
    registry: HealthRecorder | None
    tracer_provider: trace.TracerProvider | None
    meter_provider: metrics.MeterProvider | None
    enforce: bool | None  # refuse calls to a model that is down (docs/enforcement.md)


def _make_decorator(func: Any, health_operation: str, options: DecoratorOptions) -> Any:
    unknown = set(options) - set(DecoratorOptions.__annotations__)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")

    def decorate(wrapped: _F) -> _F:
        if not callable(unwrap_descriptor(wrapped)):
            raise TypeError(f"cannot decorate {wrapped!r}: not callable")
        plan = CallPlan(
            wrapped,
            model=options.get("model"),
            provider=options.get("provider"),
            gateway=options.get("gateway"),
            operation_name=options.get("operation", semconv.OP_CHAT),
            health_operation=health_operation,
            attributes=options.get("attributes"),
            registry=options.get("registry"),
            tracer_provider=options.get("tracer_provider"),
            meter_provider=options.get("meter_provider"),
            enforce=options.get("enforce"),
        )
        decorated: Any = wrapt.FunctionWrapper(wrapped, _wrapper_for(wrapped, plan))  # type: ignore[arg-type]
        setattr(decorated, MEASURED_MARKER, True)
        return decorated  # type: ignore[no-any-return]

    if func is not None:
        return decorate(func)
    return decorate


@overload
def monitor(func: _F, /) -> _F: ...


@overload
def monitor(**options: Unpack[DecoratorOptions]) -> Callable[[_F], _F]: ...


def monitor(func: Any = None, /, **options: Unpack[DecoratorOptions]) -> Any:
    """Measure every call of the decorated callable as one inference call of a model.

    ``model``, ``provider`` and ``gateway`` are each a string or a callable receiving the call's
    ``CallArgs``. Without ``model``, the call's ``model`` argument is used (``"unknown"`` when there is
    none); without ``provider``, the SDK package the function comes from (``openai``, ``anthropic``
    ...) or ``"unknown"``; without ``gateway``, ``"direct"``. ``operation`` is ``gen_ai.operation.name``
    (default ``chat``). ``attributes`` returns extra span attributes for a call. ``registry``,
    ``tracer_provider`` and ``meter_provider`` default to those of ``configure()``, else the global ones.
    ``enforce`` refuses a call to a model that is down with ``ModelUnavailableError`` (docs/enforcement.md;
    default: ``configure()``'s, else ``MODEL_HEALTH_ENFORCE``, else off).
    Usable bare (``@monitor``) or with arguments (``@monitor(provider="openai")``). See docs/decorators.md.
    """
    return _make_decorator(func, semconv.OPERATION_INFERENCE, options)


@overload
def probe(func: _F, /) -> _F: ...


@overload
def probe(**options: Unpack[DecoratorOptions]) -> Callable[[_F], _F]: ...


def probe(func: Any = None, /, **options: Unpack[DecoratorOptions]) -> Any:
    """Like ``monitor``, for health-check calls: ``model_health.operation`` is ``health_check``."""
    return _make_decorator(func, semconv.OPERATION_HEALTH_CHECK, options)
