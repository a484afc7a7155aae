"""Proxies for streams returned by a decorated call: the span ends when the stream does.

The caller gets a ``wrapt.ObjectProxy`` of the stream. It observes iteration (``__next__`` /
``__anext__``), ``with``/``async with`` (which yields the proxy itself, not the wrapped stream: wrapt's
own ``__enter__`` would return the wrapped object and nothing would be seen), ``close``/``aclose``, and,
for SDK streams that consume themselves internally (anthropic ``MessageStream``, openai
``ChatCompletionStream``), ``until_done``, ``get_final_*`` and ``text_stream``. Every other attribute
(``response``, ``request_id`` ...) is the wrapped stream's.

The measurement ends exactly once: exhausted → complete; an exception while reading → classified by the
exception (re-raised unchanged); closed early or garbage-collected unfinished → neutral ``cancelled``
(complete if the model had already sent its finish reason).
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Final

import wrapt

from ..._internal import guarded, report_internal_error
from ..call_step import CallStep
from ..measurement import CallMeasurement
from ..responses import ResponseInfo, read_response, read_stream_event
from .call_results import finish_cancelled, finish_complete, finish_exception

# Properties of SDK streams holding the accumulated message (read when the stream was consumed by
# the SDK itself, so its events never passed through the proxy).
_SNAPSHOT_ATTRIBUTES: Final = ("current_message_snapshot", "current_completion_snapshot")


class StreamObserver(CallStep):
    """The state of one streamed call, shared by the proxies that observe it.

    ``with observer:`` is one step of the stream (a ``__next__``, an ``__enter__``, a ``get_final_*``);
    ``StopIteration``/``StopAsyncIteration`` leaving it ends the call as exhausted, read from ``source``.
    """

    __slots__ = ("_first", "info", "source")
    m: CallMeasurement

    def __init__(self, m: CallMeasurement, source: object = None) -> None:
        super().__init__(m)
        self.info = ResponseInfo()
        self.source = source  # the stream whose SDK snapshot is read when it is exhausted
        self._first = True

    def raised(self, m: CallMeasurement, exc_type: type[BaseException] | None, exc: BaseException) -> None:
        if exc_type is StopIteration or exc_type is StopAsyncIteration:
            self.exhausted(self.source)
        else:
            self.failed(exc)

    def chunk(self) -> None:
        if self._first:
            self._first = False
            self.m.first_chunk()

    def item(self, item: object) -> None:
        try:  # not guarded(): runs for every item
            self.chunk()
            if getattr(item, "type", None) == "chunk":  # openai ChatCompletionStream's ChunkEvent
                item = getattr(item, "chunk", item)
            read_stream_event(item, self.info)
        except Exception:
            report_internal_error("streams.read_event")

    def exhausted(self, source: object = None) -> None:
        if self.m.done:
            return
        if source is not None:
            self.read_snapshot(source)
        finish_complete(self.m, self.info)

    def final_result(self, result: object, source: object, proxy: object) -> object:
        """What a proxy's ``get_final_*`` returns: the result, or the proxy where it was the stream."""
        self.final(result, source)
        return proxy if result is source else result

    def final(self, result: object, source: object) -> None:
        """A ``get_final_*`` / ``until_done`` returned: the SDK consumed the whole stream."""
        if self.m.done:
            return
        with guarded("streams.final"):
            if result is None or isinstance(result, str) or result is source:
                self.read_snapshot(source)
            else:
                read_response(result, self.info)
        finish_complete(self.m, self.info)

    def read_snapshot(self, source: object) -> None:
        for name in _SNAPSHOT_ATTRIBUTES:
            try:
                snapshot = getattr(source, name, None)
            except Exception:  # anthropic asserts when no event arrived yet
                continue
            if snapshot is not None:
                with guarded("streams.read_snapshot"):
                    read_response(snapshot, self.info)
                return

    def failed(self, exc: BaseException) -> None:
        if not self.m.done:
            finish_exception(self.m, exc, self.info)

    def closed(self) -> None:
        if not self.m.done:
            finish_cancelled(self.m, self.info)


class _IfWrappedHas:
    """A proxy method that exists only when the wrapped stream has an attribute of the same name, so
    ``hasattr``, ``getattr`` and ``with`` answer as the stream itself would (``AttributeError`` when
    it has none) instead of finding our method."""

    def __init__(self, method: Callable[..., Any]) -> None:
        self._method = method
        self._name = method.__name__
        self.__doc__ = method.__doc__

    def __get__(self, proxy: Any, owner: type | None = None) -> Any:
        if proxy is None:
            return self
        getattr(proxy.__wrapped__, self._name)  # raises as the stream would
        return types.MethodType(self._method, proxy)


def abandon(proxy: Any) -> None:
    """``__del__`` of a proxy: finish an unfinished call as cancelled (once: ``finish`` is idempotent)."""
    with guarded("streams.abandon"):
        if sys.is_finalizing():
            return
        observer: StreamObserver | None = getattr(proxy, "_self_observer", None)
        if observer is not None:
            observer.closed()


class SyncStreamProxy(wrapt.ObjectProxy[Any]):
    """An iterator (openai ``Stream``, any ``__next__`` object) whose reading is observed."""

    def __init__(self, wrapped: Any, observer: StreamObserver) -> None:
        super().__init__(wrapped)
        self._self_observer = observer

    def __del__(self) -> None:
        abandon(self)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        observer: StreamObserver = self._self_observer
        with observer:
            item = self.__wrapped__.__next__()
        observer.item(item)
        return item

    @_IfWrappedHas
    def __enter__(self) -> Any:
        inner = self.__wrapped__.__enter__()
        return self if inner is self.__wrapped__ else inner

    @_IfWrappedHas
    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_observer.closed()

    @_IfWrappedHas
    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_observer.closed()


class SyncManagedStreamProxy(SyncStreamProxy):
    """A stream the SDK can consume itself (``until_done``, ``get_final_*``, ``text_stream``)."""

    def _self_final(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        method = getattr(self.__wrapped__, name)
        with self._self_observer:
            result = method(*args, **kwargs)
        return self._self_observer.final_result(result, self.__wrapped__, self)

    @_IfWrappedHas
    def until_done(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_final("until_done", args, kwargs)

    @_IfWrappedHas
    def get_final_message(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_final("get_final_message", args, kwargs)

    @_IfWrappedHas
    def get_final_text(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_final("get_final_text", args, kwargs)

    @_IfWrappedHas
    def get_final_completion(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_final("get_final_completion", args, kwargs)

    @_IfWrappedHas
    def get_final_response(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_final("get_final_response", args, kwargs)

    @property
    def text_stream(self) -> Iterator[Any]:
        # The SDK's text_stream reads the real stream, not this proxy: observe it as a stream of its own
        # (the observer's source stays the SDK stream, whose snapshot says how the call ended).
        return SyncStreamProxy(self.__wrapped__.text_stream, self._self_observer)


class AsyncStreamProxy(wrapt.ObjectProxy[Any]):
    """An async iterator (openai ``AsyncStream``, any ``__anext__`` object) whose reading is observed."""

    def __init__(self, wrapped: Any, observer: StreamObserver) -> None:
        super().__init__(wrapped)
        self._self_observer = observer

    def __del__(self) -> None:
        abandon(self)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        observer: StreamObserver = self._self_observer
        with observer:
            item = await self.__wrapped__.__anext__()
        observer.item(item)
        return item

    @_IfWrappedHas
    async def __aenter__(self) -> Any:
        inner = await self.__wrapped__.__aenter__()
        return self if inner is self.__wrapped__ else inner

    @_IfWrappedHas
    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_observer.closed()

    @_IfWrappedHas
    def close(self) -> Any:
        return self._self_closing(self.__wrapped__.close)

    @_IfWrappedHas
    def aclose(self) -> Any:
        return self._self_closing(self.__wrapped__.aclose)

    def _self_closing(self, method: Any) -> Any:
        observer: StreamObserver = self._self_observer
        try:
            result = method()
        except BaseException:
            observer.closed()
            raise
        if inspect.isawaitable(result):
            return _closed_after(result, observer)
        observer.closed()
        return result


async def _closed_after(awaitable: Awaitable[Any], observer: StreamObserver) -> Any:
    try:
        return await awaitable
    finally:
        observer.closed()


class AsyncManagedStreamProxy(AsyncStreamProxy):
    """The async twin of ``SyncManagedStreamProxy``."""

    async def _self_final(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        method = getattr(self.__wrapped__, name)
        with self._self_observer:
            result = await method(*args, **kwargs)
        return self._self_observer.final_result(result, self.__wrapped__, self)

    @_IfWrappedHas
    async def until_done(self, *args: Any, **kwargs: Any) -> Any:
        return await self._self_final("until_done", args, kwargs)

    @_IfWrappedHas
    async def get_final_message(self, *args: Any, **kwargs: Any) -> Any:
        return await self._self_final("get_final_message", args, kwargs)

    @_IfWrappedHas
    async def get_final_text(self, *args: Any, **kwargs: Any) -> Any:
        return await self._self_final("get_final_text", args, kwargs)

    @_IfWrappedHas
    async def get_final_completion(self, *args: Any, **kwargs: Any) -> Any:
        return await self._self_final("get_final_completion", args, kwargs)

    @_IfWrappedHas
    async def get_final_response(self, *args: Any, **kwargs: Any) -> Any:
        return await self._self_final("get_final_response", args, kwargs)

    @property
    def text_stream(self) -> AsyncIterator[Any]:
        return AsyncStreamProxy(self.__wrapped__.text_stream, self._self_observer)
