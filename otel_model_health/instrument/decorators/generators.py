"""Drivers for decorated generator and async generator functions (and generators a call returns).

The driver runs the user's generator one step at a time with the call's span current, and makes it
not current again before handing the item to the caller: the caller's context never sees our span.
``send``, ``throw`` and ``close`` (and ``asend``, ``athrow``, ``aclose``) are passed through, so the
decorated generator behaves as the original. The measurement starts at the first step (a generator
that is never iterated makes no call) unless the caller hands an already started one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

from ..._internal import report_internal_error
from ..measurement import CallMeasurement
from ..responses import ResponseInfo, read_stream_event
from .call_results import finish_cancelled, finish_complete, finish_exception

StartCall = Callable[[], CallMeasurement | None]


def _observe(m: CallMeasurement, info: ResponseInfo, item: object) -> None:
    try:  # not guarded(): runs for every item
        m.first_chunk()
        read_stream_event(item, info)
    except Exception:
        report_internal_error("generators.read_event")


def drive_generator(gen: Generator[Any, Any, Any], start: StartCall) -> Generator[Any, Any, Any]:
    m = start()
    if m is None:
        return (yield from gen)
    info = ResponseInfo()
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        token = m.activate()
        try:
            if thrown is None:
                item = gen.send(sent)
            else:
                exc, thrown = thrown, None
                item = gen.throw(exc)
        except StopIteration as stop:
            m.deactivate(token)
            finish_complete(m, info)
            return stop.value
        except BaseException as exc:
            m.deactivate(token)
            finish_exception(m, exc, info)
            raise
        m.deactivate(token)
        _observe(m, info, item)
        try:
            sent = yield item
        except GeneratorExit:
            token = m.activate()
            try:
                gen.close()
            except BaseException as exc:
                m.deactivate(token)
                finish_exception(m, exc, info)
                raise
            m.deactivate(token)
            finish_cancelled(m, info)
            raise
        except BaseException as exc:  # caller's throw(): hand it to the user's generator
            thrown = exc


async def drive_async_generator(agen: AsyncGenerator[Any, Any], start: StartCall) -> AsyncGenerator[Any, Any]:
    m = start()
    info = ResponseInfo()
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        token = m.activate() if m is not None else None
        try:
            if thrown is None:
                item = await agen.asend(sent)
            else:
                exc, thrown = thrown, None
                item = await agen.athrow(exc)
        except StopAsyncIteration:
            if m is not None:
                m.deactivate(token)
                finish_complete(m, info)
            return
        except BaseException as exc:
            if m is not None:
                m.deactivate(token)
                finish_exception(m, exc, info)
            raise
        if m is not None:
            m.deactivate(token)
            _observe(m, info, item)
        try:
            sent = yield item
        except GeneratorExit:
            token = m.activate() if m is not None else None
            try:
                await agen.aclose()
            except BaseException as exc:
                if m is not None:
                    m.deactivate(token)
                    finish_exception(m, exc, info)
                raise
            if m is not None:
                m.deactivate(token)
                finish_cancelled(m, info)
            raise
        except BaseException as exc:
            thrown = exc
