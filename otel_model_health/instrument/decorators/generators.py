"""Drivers for decorated generator and async generator functions (and generators a call returns).

The driver runs the user's generator one step at a time with the call's span current, and makes it
not current again before handing the item to the caller: the caller's context never sees our span.
``send``, ``throw`` and ``close`` (and ``asend``, ``athrow``, ``aclose``) are passed through, so the
decorated generator behaves as the original. The measurement starts at the first step (a generator
that is never iterated makes no call) unless the caller hands an already started one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import nullcontext
from typing import Any, Final

from ..measurement import CallMeasurement
from .streams import StreamObserver

StartCall = Callable[[], CallMeasurement | None]

# The step of an async generator that measures nothing (``start`` declined): reusable, so no
# allocation per step.
_UNMEASURED: Final = nullcontext()


def drive_generator(gen: Generator[Any, Any, Any], start: StartCall) -> Generator[Any, Any, Any]:
    m = start()
    if m is None:
        return (yield from gen)
    observer = StreamObserver(m)
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        try:
            with observer:  # one step of the user's generator, with the call's span current
                item = gen.send(sent) if thrown is None else gen.throw(thrown)
        except StopIteration as stop:
            return stop.value
        thrown = None
        observer.item(item)
        try:
            sent = yield item
        except GeneratorExit:
            with observer:
                gen.close()
            observer.closed()
            raise
        except BaseException as exc:  # caller's throw(): hand it to the user's generator
            thrown = exc


async def drive_async_generator(agen: AsyncGenerator[Any, Any], start: StartCall) -> AsyncGenerator[Any, Any]:
    # No ``yield from`` for async generators: an unmeasured one is driven here too, step by step.
    m = start()
    observer = StreamObserver(m) if m is not None else None
    step = observer if observer is not None else _UNMEASURED
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        try:
            with step:
                item = await (agen.asend(sent) if thrown is None else agen.athrow(thrown))
        except StopAsyncIteration:
            return
        thrown = None
        if observer is not None:
            observer.item(item)
        try:
            sent = yield item
        except GeneratorExit:
            with step:
                await agen.aclose()
            if observer is not None:
                observer.closed()
            raise
        except BaseException as exc:
            thrown = exc
