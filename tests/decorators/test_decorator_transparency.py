"""The first law: a decorated callable behaves exactly as the original, in every shape."""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from otel_model_health.instrument.decorators import monitor, probe

OUR_FILES = ("otel_model_health/instrument/",)


class ModelError(Exception):
    pass


def user_frames(exc: BaseException) -> list[tuple[str, str, str | None]]:
    """The traceback frames outside our package (the user's code and the test's)."""
    return [
        (frame.filename, frame.name, frame.line)
        for frame in traceback.extract_tb(exc.__traceback__)
        if not any(part in frame.filename for part in OUR_FILES)
    ]


def our_frames(exc: BaseException) -> list[str]:
    return [
        frame.name
        for frame in traceback.extract_tb(exc.__traceback__)
        if any(part in frame.filename for part in OUR_FILES)
    ]


# --- the shapes, written once and decorated per test ------------------------------------------------
def plain(prompt: str, model: str = "m1", *, fail: bool = False) -> dict[str, Any]:
    """A plain function."""
    if fail:
        raise ModelError(f"boom {prompt}")
    return {"model": model, "text": prompt}


async def coroutine(prompt: str, model: str = "m1", *, fail: bool = False) -> dict[str, Any]:
    """An async function."""
    await asyncio.sleep(0)
    if fail:
        raise ModelError(f"boom {prompt}")
    return {"model": model, "text": prompt}


def generator(prompt: str, model: str = "m1", *, fail: bool = False) -> Iterator[str]:
    """A generator function."""
    yield prompt
    yield model
    if fail:
        raise ModelError(f"boom {prompt}")
    yield "end"


async def async_generator(prompt: str, model: str = "m1", *, fail: bool = False) -> AsyncIterator[str]:
    """An async generator function."""
    yield prompt
    await asyncio.sleep(0)
    yield model
    if fail:
        raise ModelError(f"boom {prompt}")
    yield "end"


class _Failing:
    def __init__(self, items: list[str], fail: bool) -> None:
        self._items = iter(items)
        self._fail = fail

    def __iter__(self) -> _Failing:
        return self

    def __next__(self) -> str:
        item = next(self._items, None)
        if item is None:
            if self._fail:
                raise ModelError("boom in stream")
            raise StopIteration
        return item


def returns_iterator(prompt: str, model: str = "m1", *, fail: bool = False) -> _Failing:
    """A function returning an iterator."""
    return _Failing([prompt, model], fail)


DECORATORS: list[Callable[..., Any]] = [
    lambda f, t: monitor(**t.options())(f),
    lambda f, t: probe(provider="openai", **t.options())(f),
    lambda f, t: monitor(f),  # bare, default registry and providers
]


def _sync_collect(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    result = fn(*args, **kwargs)
    if inspect.isgenerator(result) or isinstance(result, _Failing) or hasattr(result, "__next__"):
        return list(result)
    return result


async def _async_collect(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    result = fn(*args, **kwargs)
    if inspect.isasyncgen(result):
        return [item async for item in result]
    return await result


@pytest.mark.parametrize("decorate", DECORATORS)
@pytest.mark.parametrize("fn", [plain, generator, returns_iterator])
def test_sync_shapes_return_and_raise_the_same(fn: Any, decorate: Any, telemetry: Any) -> None:
    wrapped = decorate(fn, telemetry)
    assert _sync_collect(wrapped, "hi", model="m2") == _sync_collect(fn, "hi", model="m2")
    assert _sync_collect(wrapped, "hi", "m3") == _sync_collect(fn, "hi", "m3")

    with pytest.raises(ModelError) as original:
        _sync_collect(fn, "x", fail=True)
    with pytest.raises(ModelError) as decorated:
        _sync_collect(wrapped, "x", fail=True)
    assert type(decorated.value) is type(original.value)
    assert str(decorated.value) == str(original.value)
    # The same frames of the user's code, in the same order; ours are only the wrapper's own.
    assert user_frames(decorated.value)[1:] == user_frames(original.value)[1:]
    assert len(our_frames(decorated.value)) <= 3


@pytest.mark.parametrize("decorate", DECORATORS)
@pytest.mark.parametrize("fn", [coroutine, async_generator])
async def test_async_shapes_return_and_raise_the_same(fn: Any, decorate: Any, telemetry: Any) -> None:
    wrapped = decorate(fn, telemetry)
    assert await _async_collect(wrapped, "hi", model="m2") == await _async_collect(fn, "hi", model="m2")
    with pytest.raises(ModelError) as original:
        await _async_collect(fn, "x", fail=True)
    with pytest.raises(ModelError) as decorated:
        await _async_collect(wrapped, "x", fail=True)
    assert str(decorated.value) == str(original.value)
    assert user_frames(decorated.value)[1:] == user_frames(original.value)[1:]


def test_the_same_exception_object_is_raised(telemetry: Any) -> None:
    error = ModelError("the one")

    @monitor(**telemetry.options())
    def call(model: str) -> None:
        raise error

    with pytest.raises(ModelError) as caught:
        call("m")
    assert caught.value is error
    # Exactly one frame of ours: the wrapper that re-raises with a bare `raise`.
    assert our_frames(caught.value) == ["monitored_call"]


@pytest.mark.parametrize("fn", [plain, coroutine, generator, async_generator, returns_iterator])
def test_metadata_is_preserved(fn: Any, telemetry: Any) -> None:
    wrapped = monitor(**telemetry.options())(fn)
    assert inspect.signature(wrapped) == inspect.signature(fn)
    assert wrapped.__name__ == fn.__name__
    assert wrapped.__qualname__ == fn.__qualname__
    assert wrapped.__doc__ == fn.__doc__
    assert wrapped.__wrapped__ is fn
    assert wrapped.__module__ == fn.__module__
    assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(fn)
    assert inspect.isgeneratorfunction(wrapped) == inspect.isgeneratorfunction(fn)
    assert inspect.isasyncgenfunction(wrapped) == inspect.isasyncgenfunction(fn)


def test_bad_arguments_raise_at_call_time_as_undecorated(telemetry: Any) -> None:
    wrapped = monitor(**telemetry.options())(generator)
    with pytest.raises(TypeError) as original:
        generator()  # type: ignore[call-arg]
    with pytest.raises(TypeError) as decorated:
        wrapped()
    assert str(decorated.value) == str(original.value)
    assert telemetry.recorder.records == []


# --- methods --------------------------------------------------------------------------------------
def make_class(telemetry: Any) -> type:
    opts = telemetry.options()

    class Client:
        def __init__(self) -> None:
            self.calls = 0

        @monitor(**opts)
        def instance(self, prompt: str, model: str = "im") -> tuple[Any, ...]:
            """instance doc"""
            self.calls += 1
            return (self, prompt, model)

        @monitor(**opts)
        @classmethod
        def class_outer(cls, prompt: str, model: str = "co") -> tuple[Any, ...]:
            return (cls, prompt, model)

        @classmethod
        @monitor(**opts)
        def class_inner(cls, prompt: str, model: str = "ci") -> tuple[Any, ...]:
            return (cls, prompt, model)

        @monitor(**opts)
        @staticmethod
        def static_outer(prompt: str, model: str = "so") -> tuple[Any, ...]:
            return (prompt, model)

        @staticmethod
        @monitor(**opts)
        def static_inner(prompt: str, model: str = "si") -> tuple[Any, ...]:
            return (prompt, model)

        @monitor(**opts)
        async def async_method(self, prompt: str, model: str = "am") -> tuple[Any, ...]:
            return (self, prompt, model)

        @monitor(**opts)
        def gen_method(self, model: str) -> Iterator[Any]:
            yield self
            yield model

    return Client


def test_methods_bind_as_undecorated(telemetry: Any) -> None:
    cls = make_class(telemetry)
    obj = cls()
    assert obj.instance("p") == (obj, "p", "im")
    assert obj.instance("p", "x1") == (obj, "p", "x1")
    assert cls.instance(obj, "p", model="x2") == (obj, "p", "x2")
    assert obj.class_outer("p", "x3") == (cls, "p", "x3")
    assert cls.class_outer("p") == (cls, "p", "co")
    assert obj.class_inner("p", "x4") == (cls, "p", "x4")
    assert cls.class_inner("p") == (cls, "p", "ci")
    assert obj.static_outer("p", "x5") == ("p", "x5")
    assert cls.static_outer("p") == ("p", "so")
    assert obj.static_inner("p", model="x6") == ("p", "x6")
    assert cls.static_inner("p") == ("p", "si")
    assert asyncio.run(obj.async_method("p", "x7")) == (obj, "p", "x7")
    assert list(obj.gen_method("x8")) == [obj, "x8"]
    assert obj.calls == 3
    # The model argument was found at the right position in every binding.
    models = [r.key.model for r in telemetry.recorder.records]
    assert models == ["im", "x1", "x2", "x3", "co", "x4", "ci", "x5", "so", "x6", "si", "x7", "x8"]
    assert cls.instance.__doc__ == "instance doc"
    assert inspect.signature(obj.instance) == inspect.signature(cls.instance.__wrapped__.__get__(obj))
    assert inspect.iscoroutinefunction(obj.async_method)


# --- generator protocol -----------------------------------------------------------------------------
def echo(model: str) -> Iterator[Any]:
    received = []
    try:
        while True:
            value = yield len(received)
            if value == "stop":
                return received
            received.append(value)
    except KeyError as exc:
        yield f"caught {exc.args[0]}"
        yield "after"
    finally:
        received.append("finally")


def test_generator_send_throw_close_behave_as_original(telemetry: Any) -> None:
    wrapped = monitor(**telemetry.options())(echo)
    for fn in (echo, wrapped):
        gen = fn("m")
        assert next(gen) == 0
        assert gen.send("a") == 1
        assert gen.send("b") == 2
        with pytest.raises(StopIteration) as stop:
            gen.send("stop")
        assert stop.value.value == ["a", "b", "finally"]

        gen = fn("m")
        next(gen)
        assert gen.throw(KeyError("k")) == "caught k"
        assert next(gen) == "after"
        gen.close()
        with pytest.raises(StopIteration):
            next(gen)

        gen = fn("m")
        next(gen)
        with pytest.raises(ValueError, match="v"):
            gen.throw(ValueError("v"))


async def aecho(model: str) -> AsyncIterator[Any]:
    count = 0
    try:
        while True:
            value = yield count
            count += 1
            if value == "stop":
                return
    except KeyError:
        yield "caught"


async def test_async_generator_asend_athrow_aclose_behave_as_original(telemetry: Any) -> None:
    wrapped = monitor(**telemetry.options())(aecho)
    for fn in (aecho, wrapped):
        agen = fn("m")
        assert await agen.__anext__() == 0
        assert await agen.asend("x") == 1
        with pytest.raises(StopAsyncIteration):
            await agen.asend("stop")
        agen = fn("m")
        await agen.__anext__()
        assert await agen.athrow(KeyError("k")) == "caught"
        await agen.aclose()
        agen = fn("m")
        await agen.__anext__()
        await agen.aclose()
        with pytest.raises(StopAsyncIteration):
            await agen.__anext__()
    outcomes = [r.outcome.value for r in telemetry.recorder.records]
    # complete, then athrow→caught then aclose (cancelled), then aclose (cancelled)
    assert outcomes == ["success", "neutral", "neutral"]


def test_returned_values_are_the_same_object(telemetry: Any) -> None:
    payload = {"model": "m", "choices": []}

    @monitor(**telemetry.options())
    def call(model: str) -> dict[str, Any]:
        return payload

    assert call("m") is payload
