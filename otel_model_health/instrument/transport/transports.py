"""``ModelHealthTransport`` / ``AsyncModelHealthTransport``: measure every model call an httpx or httpx2
client makes, one span and one outcome per HTTP attempt, without patching anything.

One implementation serves both modules. ``ModelHealthTransport(inner)`` returns an instance of a class
built (once, lazily) to also derive from the inner transport's module's ``BaseTransport``, so
``httpx.Client(transport=...)`` and ``httpx2.Client(transport=...)`` both accept it, and the package
imports without either module. ``clients.instrument_client(client)`` wraps a client's own transports in
place with them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from types import TracebackType
from typing import Any, ClassVar, Final

from opentelemetry import metrics, trace

from ... import defaults, enforcement
from ..._internal import report_internal_error
from ...health.types import HealthRecorder
from ...hosts import HostResolver, Route, route_key
from ...keys import ModelKey
from ...outcomes import MAX_RETRY_AFTER_S, parse_retry_after
from ..call_step import CallStep
from ..instruments import InstrumentsRef
from ..measurement import start_call
from . import httpx_support
from .capture import ContentCapture, from_body
from .observer import CallObserver, sweep_idle_streams
from .requests import match_endpoint, model_and_stream, sdk_provider

RETRY_COUNT_HEADER: Final = "x-stainless-retry-count"
_MAX_KEYS: Final = 1024
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}


class _Core:
    """Everything both transports share: options, caches, and the per-attempt steps."""

    __slots__ = ("_capture", "_gateway", "_inst", "_keys", "_provider", "_resolver")

    def __init__(
        self,
        *,
        registry: HealthRecorder | None,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
        provider: str | None,
        gateway: str | None,
        hosts: Mapping[str, Route | str | tuple[str | None, str | None]] | None,
        capture_content: bool | None,
    ) -> None:
        self._inst = InstrumentsRef(
            registry=registry, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
        self._provider = provider
        self._gateway = gateway
        self._resolver = HostResolver(hosts)
        self._capture = capture_content
        self._keys: dict[tuple[str, str, str | None], ModelKey] = {}

    def key(self, host: str, fallback: str, model: str | None) -> ModelKey:
        """``fallback``: the provider when the host does not tell (``requests.sdk_provider``)."""
        cache_key = (host, fallback, model)
        key = self._keys.get(cache_key)
        if key is not None:
            return key
        key = route_key(
            self._resolver,
            host,
            model,
            fallback_provider=fallback,
            provider=self._provider,
            gateway=self._gateway,
        )
        if len(self._keys) >= _MAX_KEYS:
            self._keys = {}  # bounded: many distinct models or hosts only cost a re-computation
        self._keys[cache_key] = key
        return key

    def start(self, request: Any) -> CallObserver | None:
        """Begin measuring one attempt; None for a request that is no model call (the only work done
        for every request), when suppressed, or when our code failed."""
        endpoint = match_endpoint(request.method, request.url.path)
        if endpoint is None:
            return None
        sweep_idle_streams()
        try:  # not guarded(): the block's locals are used after it
            url = request.url
            body = getattr(request, "_content", None)
            if not isinstance(body, bytes):
                body = None  # a streamed request body: not ours to read
            model, stream = model_and_stream(body)
            if endpoint.path_model is not None:
                model = endpoint.path_model
            if endpoint.path_stream is not None:
                stream = endpoint.path_stream
            host: str = url.host
            port = url.port or _DEFAULT_PORTS.get(url.scheme)
            key = self.key(host, sdk_provider(endpoint, request.headers), model)
            capture = self._capture if self._capture is not None else defaults.capture_content_enabled()
            content = ContentCapture(body, endpoint.dialect) if capture else None
            resend = _resend_count(request.headers.get(RETRY_COUNT_HEADER))
        except Exception:
            report_internal_error("transport.start")
            return None
        m = start_call(
            self._inst.get(),
            key=key,
            operation_name=endpoint.operation,
            server_address=host,
            server_port=port,
            stream=stream,
        )
        if m is None:
            return None
        if resend:
            m.resend_count = resend
        if content is None:  # not captured: error texts must not quote the body (read on error only)
            m.request_content = partial(from_body, body)
        return CallObserver(m, endpoint, content)

    @staticmethod
    def attach(observer: CallObserver, response: Any, stream_cls: type[Any]) -> Any:
        """Hand the response back with its stream wrapped; the observer ends the call with the stream."""
        try:  # not guarded(): runs for every call, where a bare try is free
            headers = response.headers
            status: int = response.status_code
            content = getattr(response, "_content", None)
            if not isinstance(content, bytes):
                content = None
            observer.response(
                status,
                headers.get("content-type"),
                # A body already read (in-memory transports) is already decoded too.
                headers.get("content-encoding") if content is None else None,
                _retry_after(headers) if status >= 400 else None,
            )
            if content is not None:
                observer.content(content)
            else:
                response.stream = stream_cls(response.stream, observer)
                observer.streaming()
        except Exception:
            report_internal_error("transport.attach")
            observer.closed()
        return response


def _resend_count(value: str | None) -> int:
    if not value:
        return 0
    try:
        count = int(value)
    except ValueError:
        return 0
    return count if 0 < count < 1000 else 0


def _retry_after(headers: Any) -> float | None:
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            seconds = float(ms) / 1000.0
        except ValueError:
            seconds = -1.0
        if not math.isnan(seconds) and seconds >= 0:
            return min(seconds, MAX_RETRY_AFTER_S)
    value: str | None = headers.get("retry-after")
    return parse_retry_after(value)


# A transport class made for one httpx module: a subclass of ours and of that module's base transport
# (so the client's isinstance checks pass), made once per (class, module).
_specialised: dict[tuple[type[Any], str], type[Any]] = {}


def _specialise(base: type[Any], name: str) -> type[Any]:
    cls = _specialised.get((base, name))
    if cls is None:
        module = httpx_support.load(name)
        cls = type(base.__name__, (base, getattr(module, base._mh_base_transport)), {"_mh_module_name": name})
        cls.__module__ = base.__module__
        cls.__qualname__ = base.__qualname__
        _specialised[base, name] = cls
    return cls


def _module_for(transport: object, module: str | None) -> str:
    if module is not None:
        return module
    if transport is not None:
        name = httpx_support.module_name_of(transport)
        if name is not None:
            return name
    return httpx_support.default_module_name()


class TransportBase:
    """What the sync and async transports share; ``isinstance`` of it finds our wrappers."""

    _mh_module_name: ClassVar[str]  # set on the specialised classes only
    _mh_base_transport: ClassVar[str]  # the httpx module's base class the transport must also be

    def __new__(cls, transport: Any = None, *, module: str | None = None, **_options: Any) -> Any:
        specialised = cls
        if "_mh_module_name" not in cls.__dict__:
            specialised = _specialise(cls, _module_for(transport, module))
        return object.__new__(specialised)

    def __init__(
        self,
        transport: Any = None,
        *,
        module: str | None = None,
        registry: HealthRecorder | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        provider: str | None = None,
        gateway: str | None = None,
        hosts: Mapping[str, Route | str | tuple[str | None, str | None]] | None = None,
        capture_content: bool | None = None,
        enforce: bool | None = None,
    ) -> None:
        self._mh_module = httpx_support.load(self._mh_module_name)
        self._mh_enforce = enforce
        self._mh_core = _Core(
            registry=registry,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            provider=provider,
            gateway=gateway,
            hosts=hosts,
            capture_content=capture_content,
        )
        self._transport = transport if transport is not None else self._default_inner()

    def _default_inner(self) -> Any:
        raise NotImplementedError

    def _mh_refused(self, observer: CallObserver, request: Any) -> Any:
        """With enforcement on, the synthetic answer to a refused call (no I/O), else None."""
        if not enforcement.enforcing(self._mh_enforce):
            return None
        refusal = enforcement.admit(observer.m)
        if refusal is None:
            return None
        return enforcement.refusal_response(self._mh_module, request, refusal)

    @property
    def wrapped(self) -> Any:
        """The inner transport."""
        return self._transport

    def __repr__(self) -> str:
        return f"<{type(self).__name__} ({self._mh_module_name}) wrapping {self._transport!r}>"


class ModelHealthTransport(TransportBase):
    """A sync transport for ``httpx.Client`` or ``httpx2.Client`` wrapping ``transport`` (default: the
    module's ``HTTPTransport()``). The module is ``module=`` if given, else the inner transport's, else
    httpx2.

    Options: ``registry``, ``tracer_provider``, ``meter_provider`` (default: ``configure()``'s, else the
    global ones), ``provider`` / ``gateway`` (override the host table for every call), ``hosts`` (extra
    host table entries), ``capture_content`` (default: the GenAI env variable), ``enforce`` (refuse calls to
    a model that is down with a synthetic 503, docs/enforcement.md; default: ``configure()``'s, else
    ``MODEL_HEALTH_ENFORCE``, else off)."""

    _mh_base_transport = "BaseTransport"

    def _default_inner(self) -> Any:
        return self._mh_module.HTTPTransport()

    def handle_request(self, request: Any) -> Any:
        observer = self._mh_core.start(request)
        if observer is None:
            return self._transport.handle_request(request)
        if (refused := self._mh_refused(observer, request)) is not None:
            return refused
        with CallStep(observer.m):
            response = self._transport.handle_request(request)
        return self._mh_core.attach(observer, response, httpx_support.sync_stream_class(self._mh_module))

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Any:
        self._transport.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self._transport.__exit__(exc_type, exc_value, traceback)


class AsyncModelHealthTransport(TransportBase):
    """The async twin of ``ModelHealthTransport`` for ``httpx.AsyncClient`` / ``httpx2.AsyncClient``."""

    _mh_base_transport = "AsyncBaseTransport"

    def _default_inner(self) -> Any:
        return self._mh_module.AsyncHTTPTransport()

    async def handle_async_request(self, request: Any) -> Any:
        observer = self._mh_core.start(request)
        if observer is None:
            return await self._transport.handle_async_request(request)
        if (refused := self._mh_refused(observer, request)) is not None:
            return refused
        with CallStep(observer.m):
            response = await self._transport.handle_async_request(request)
        return self._mh_core.attach(observer, response, httpx_support.async_stream_class(self._mh_module))

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> Any:
        await self._transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self._transport.__aexit__(exc_type, exc_value, traceback)
