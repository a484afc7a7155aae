"""httpx / httpx2 loaded lazily, and the response-stream wrappers built once per module.

The core package imports without either module; a transport for one of them imports it on first use.
Classes that must subclass the module's own bases (``SyncByteStream``: the clients assert it) are built
on first use and cached, the way opentelemetry-instrumentation-httpx defines one class per module.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from types import ModuleType
from typing import Any, Final

from .observer import CallObserver

MODULES: Final = ("httpx2", "httpx")


def load(name: str) -> ModuleType:
    if name not in MODULES:
        raise ValueError(f"module must be one of {MODULES}, got {name!r}")
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"otel_model_health's transport for {name} needs the {name} package: "
            f"pip install 'otel_model_health[{name}]'"
        ) from exc


def module_name_of(obj: object) -> str | None:
    """``httpx`` or ``httpx2`` when ``obj``'s class derives from one of their classes."""
    for cls in type(obj).__mro__:
        top = cls.__module__.partition(".")[0]
        if top in MODULES:
            return top
    return None


def default_module_name() -> str:
    """httpx2 (what the openai and anthropic SDKs use) when installed, else httpx."""
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        return name
    raise ImportError(
        "otel_model_health's transport needs httpx2 or httpx: pip install 'otel_model_health[httpx2]' "
        "(or [httpx])"
    )


_sync_streams: dict[str, type[Any]] = {}
_async_streams: dict[str, type[Any]] = {}


def sync_stream_class(module: ModuleType) -> type[Any]:
    cls = _sync_streams.get(module.__name__)
    if cls is None:
        cls = _sync_streams[module.__name__] = _make_sync_stream(module.SyncByteStream)
    return cls


def async_stream_class(module: ModuleType) -> type[Any]:
    cls = _async_streams.get(module.__name__)
    if cls is None:
        cls = _async_streams[module.__name__] = _make_async_stream(module.AsyncByteStream)
    return cls


class _ObservedStream:
    """What the sync and async stream classes share: the inner stream and the observer."""

    def __init__(self, stream: Any, observer: CallObserver) -> None:
        self._stream = stream
        self._observer = observer

    def __del__(self) -> None:
        # An abandoned, never-closed response still ends its span, once (observer is idempotent).
        observer = getattr(self, "_observer", None)
        if observer is not None:
            observer.closed()


def _make_sync_stream(base: type[Any]) -> type[Any]:
    class ObservedSyncStream(_ObservedStream, base):  # type: ignore[misc]
        """Passes every chunk through as it arrives (never buffers) and tells the observer about it."""

        def __iter__(self) -> Iterator[bytes]:
            observer = self._observer
            inner = iter(self._stream)
            try:
                for chunk in inner:
                    # The caller gets each chunk before we parse it: parsing adds no latency.
                    observer.handing(chunk)
                    yield chunk
                    observer.handed()
            except Exception as exc:
                observer.failed(exc)
                raise
            finally:
                # GeneratorExit (the caller stopped early) passes through untouched; close() decides.
                if isinstance(inner, Generator):
                    inner.close()
            observer.eof()

        def close(self) -> None:
            try:
                self._stream.close()
            finally:
                self._observer.closed()

    ObservedSyncStream.__module__ = __name__
    return ObservedSyncStream


def _make_async_stream(base: type[Any]) -> type[Any]:
    class ObservedAsyncStream(_ObservedStream, base):  # type: ignore[misc]
        async def __aiter__(self) -> AsyncIterator[bytes]:
            observer = self._observer
            inner = self._stream.__aiter__()
            try:
                async for chunk in inner:
                    observer.handing(chunk)
                    yield chunk
                    observer.handed()
            except Exception as exc:
                observer.failed(exc)
                raise
            finally:
                if isinstance(inner, AsyncGenerator):
                    await inner.aclose()
            observer.eof()

        async def aclose(self) -> None:
            try:
                await self._stream.aclose()
            finally:
                self._observer.closed()

    ObservedAsyncStream.__module__ = __name__
    return ObservedAsyncStream
