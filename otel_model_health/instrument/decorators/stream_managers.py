"""What a decorated call returned → the caller's value: complete responses end the measurement,
streams, stream managers and awaitables are handed back behind a proxy that ends it later.

Stream managers (anthropic ``MessageStreamManager``, openai ``ChatCompletionStreamManager``) make the
request in ``__enter__``; the proxy runs it with the call's span current and hands the caller a proxy
of the stream it yields, sharing the same measurement.
"""

from __future__ import annotations

import types
from collections.abc import Generator
from typing import Any

import wrapt

from ..._internal import guarded
from ..measurement import CallMeasurement
from .call_results import DecoratedCallStep, ResultKind, finish_response, result_kind
from .generators import drive_async_generator, drive_generator
from .streams import (
    AsyncManagedStreamProxy,
    AsyncStreamProxy,
    StreamObserver,
    SyncManagedStreamProxy,
    SyncStreamProxy,
    abandon,
)


def observe_result(m: CallMeasurement, result: Any) -> Any:
    """Return what the caller gets for ``result``; never raises (falls back to ``result`` itself)."""
    kind = result_kind(result)
    if kind is ResultKind.VALUE:
        finish_response(m, result)
        return result
    with guarded("stream_managers.observe_result"):
        return _wrap(m, StreamObserver(m, result), kind, result)
    m.finish()
    return result


def _wrap(m: CallMeasurement, observer: StreamObserver, kind: ResultKind, result: Any) -> Any:
    if kind is ResultKind.SYNC_STREAM:
        if isinstance(result, types.GeneratorType):
            return drive_generator(result, lambda: m)
        return SyncStreamProxy(result, observer)
    if kind is ResultKind.ASYNC_STREAM:
        if isinstance(result, types.AsyncGeneratorType):
            return drive_async_generator(result, lambda: m)
        return AsyncStreamProxy(result, observer)
    if kind is ResultKind.SYNC_MANAGED:
        return SyncManagedStreamProxy(result, observer)
    if kind is ResultKind.ASYNC_MANAGED:
        return AsyncManagedStreamProxy(result, observer)
    if kind is ResultKind.SYNC_MANAGER:
        return SyncManagerProxy(result, observer)
    if kind is ResultKind.ASYNC_MANAGER:
        return AsyncManagerProxy(result, observer)
    if kind is ResultKind.AWAITABLE:
        return AwaitableProxy(result, m)
    finish_response(m, result)
    return result


def _wrap_entered(observer: StreamObserver, stream: Any) -> Any:
    """The stream a manager's ``__enter__`` produced, behind a proxy sharing the manager's observer."""
    with guarded("stream_managers.wrap_entered"):
        observer.source = stream
        kind = result_kind(stream)
        if kind in (ResultKind.SYNC_MANAGED, ResultKind.SYNC_STREAM):
            return (SyncManagedStreamProxy if kind is ResultKind.SYNC_MANAGED else SyncStreamProxy)(
                stream, observer
            )
        if kind in (ResultKind.ASYNC_MANAGED, ResultKind.ASYNC_STREAM):
            return (AsyncManagedStreamProxy if kind is ResultKind.ASYNC_MANAGED else AsyncStreamProxy)(
                stream, observer
            )
        observer.final(stream, stream)
    return stream


class SyncManagerProxy(wrapt.ObjectProxy[Any]):
    def __init__(self, wrapped: Any, observer: StreamObserver) -> None:
        super().__init__(wrapped)
        self._self_observer: StreamObserver | None = observer
        self._self_entered: StreamObserver | None = None

    def __del__(self) -> None:
        abandon(self)  # a manager never entered: the call was never made

    def __enter__(self) -> Any:
        observer = self._self_observer
        if observer is None:
            return self.__wrapped__.__enter__()
        # From here on the stream proxy (or __exit__) ends the call, not this proxy's __del__.
        self._self_observer = None
        self._self_entered = observer
        with observer:
            stream = self.__wrapped__.__enter__()
        return _wrap_entered(observer, stream)

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            observer = self._self_entered
            if observer is not None:
                observer.closed()


class AsyncManagerProxy(wrapt.ObjectProxy[Any]):
    def __init__(self, wrapped: Any, observer: StreamObserver) -> None:
        super().__init__(wrapped)
        self._self_observer: StreamObserver | None = observer
        self._self_entered: StreamObserver | None = None

    def __del__(self) -> None:
        abandon(self)

    async def __aenter__(self) -> Any:
        observer = self._self_observer
        if observer is None:
            return await self.__wrapped__.__aenter__()
        self._self_observer = None
        self._self_entered = observer
        with observer:
            stream = await self.__wrapped__.__aenter__()
        return _wrap_entered(observer, stream)

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            observer = self._self_entered
            if observer is not None:
                observer.closed()


class AwaitableProxy(wrapt.ObjectProxy[Any]):
    """A coroutine returned by a plain (non-async) function: the call ends when it is awaited.

    Two ways to run it: ``await proxy`` (``__await__``), or, because the proxy passes
    ``asyncio.iscoroutine``, ``asyncio.create_task`` / ``gather`` / ``run``, which drive a non-native
    coroutine through ``send`` / ``throw`` / ``close``. Both go through the same observing driver."""

    def __init__(self, wrapped: Any, m: CallMeasurement) -> None:
        super().__init__(wrapped)
        self._self_observer: StreamObserver | None = StreamObserver(m)
        self._self_driver: Generator[Any, Any, Any] | None = None

    def __del__(self) -> None:
        abandon(self)  # never awaited (or a task dropped it unfinished: the task held the proxy)

    def __await__(self) -> Generator[Any, Any, Any]:
        observer: StreamObserver | None = self._self_observer
        if observer is None or self._self_driver is not None:
            # awaited a second time: the awaitable itself says what that does
            return self.__wrapped__.__await__()  # type: ignore[no-any-return]
        # The proxy may be dropped while awaited; from here on the awaiting generator ends the call.
        self._self_observer = None
        return _await(self.__wrapped__, observer.m)

    def _self_drive(self) -> Generator[Any, Any, Any] | None:
        driver = self._self_driver
        if driver is None:
            observer = self._self_observer
            if observer is None:
                return None  # already handed to an ``await``
            # The observer stays: whoever drives through send() holds the proxy, so its __del__
            # still ends a call that was dropped unfinished.
            driver = self._self_driver = _await(self.__wrapped__, observer.m)
        return driver

    def send(self, value: Any) -> Any:
        driver = self._self_drive()
        return self.__wrapped__.send(value) if driver is None else driver.send(value)

    def throw(self, *args: Any) -> Any:
        driver = self._self_drive()
        return self.__wrapped__.throw(*args) if driver is None else driver.throw(*args)

    def close(self) -> Any:
        driver = self._self_driver
        if driver is None:
            return self.__wrapped__.close()
        return driver.close()


def _await(awaitable: Any, m: CallMeasurement) -> Generator[Any, Any, Any]:
    with DecoratedCallStep(m):
        result = yield from awaitable.__await__()
    if m.done:
        return result
    return observe_result(m, result)
