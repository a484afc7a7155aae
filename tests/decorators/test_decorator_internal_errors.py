"""Errors inside our telemetry code are swallowed, logged at debug, counted; the user's call goes on."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from otel_model_health import _internal
from otel_model_health.instrument import instruments, measurement
from otel_model_health.instrument.decorators import call_results, monitor, streams
from otel_model_health.outcomes import Outcome


def _explode(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("telemetry bug")


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="otel_model_health")
    return caplog


def _assert_reported(caplog: pytest.LogCaptureFixture, before: int, where: str) -> None:
    assert _internal.internal_error_count() > before
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(where in m for m in messages), messages


def test_response_parser_raising(monkeypatch: pytest.MonkeyPatch, telemetry: Any, debug_log: Any) -> None:
    monkeypatch.setattr(call_results, "read_response", _explode)
    before = _internal.internal_error_count()
    body = {"model": "m"}
    assert monitor(**telemetry.options())(lambda model: body)("m") is body
    _assert_reported(debug_log, before, "call_results.read_response")
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS]


def test_stream_event_parser_raising(monkeypatch: pytest.MonkeyPatch, telemetry: Any, debug_log: Any) -> None:
    monkeypatch.setattr(streams, "read_stream_event", _explode)
    before = _internal.internal_error_count()

    @monitor(**telemetry.options())
    def gen(model: str) -> Iterator[int]:
        yield 1
        yield 2

    assert list(gen("m")) == [1, 2]
    assert list(monitor(**telemetry.options())(lambda model: iter([3, 4]))("m")) == [3, 4]
    _assert_reported(debug_log, before, "read_event")
    assert telemetry.recorder.outcomes == [Outcome.SUCCESS, Outcome.SUCCESS]


def test_user_callables_raising(telemetry: Any, debug_log: Any) -> None:
    before = _internal.internal_error_count()

    @monitor(model=_explode, gateway=_explode, attributes=_explode, **telemetry.options())
    def chat(prompt: str) -> str:
        return prompt.upper()

    assert chat("hi") == "HI"
    _assert_reported(debug_log, before, "monitor.attributes")
    _assert_reported(debug_log, before, "monitor.model")
    assert _internal.internal_error_count() >= before + 3
    (rec,) = telemetry.recorder.records
    assert (rec.key.model, rec.key.gateway) == ("unknown", "unknown")


def test_attributes_hook_returning_a_non_mapping(telemetry: Any, debug_log: Any) -> None:
    before = _internal.internal_error_count()
    assert monitor(attributes=lambda call: 42, **telemetry.options())(lambda model: 1)("m") == 1  # type: ignore[arg-type,return-value]
    _assert_reported(debug_log, before, "monitor.attributes")


def test_start_call_failing(monkeypatch: pytest.MonkeyPatch, telemetry: Any, debug_log: Any) -> None:
    monkeypatch.setattr(measurement.CallMeasurement, "__init__", _explode)
    before = _internal.internal_error_count()

    @monitor(**telemetry.options())
    def chat(model: str) -> str:
        return "ok"

    @monitor(**telemetry.options())
    def gen(model: str) -> Iterator[str]:
        yield "ok"

    assert chat("m") == "ok"
    assert list(gen("m")) == ["ok"]
    with pytest.raises(ZeroDivisionError):
        monitor(**telemetry.options())(lambda model: 1 / 0)("m")
    _assert_reported(debug_log, before, "measurement.start")
    assert telemetry.recorder.records == []


def test_recorder_raising_does_not_reach_the_caller(telemetry: Any, debug_log: Any) -> None:
    telemetry.recorder.record_result = _explode
    before = _internal.internal_error_count()
    assert monitor(**telemetry.options())(lambda model: "fine")("m") == "fine"
    with pytest.raises(KeyError):
        monitor(**telemetry.options())(lambda model: {}["k"])("m")
    _assert_reported(debug_log, before, "measurement.finish")


def test_instruments_resolution_failing(
    monkeypatch: pytest.MonkeyPatch, telemetry: Any, debug_log: Any
) -> None:
    monkeypatch.setattr(instruments.InstrumentsRef, "get", _explode)
    before = _internal.internal_error_count()
    assert monitor(**telemetry.options())(lambda model: "fine")("m") == "fine"
    _assert_reported(debug_log, before, "monitor.start")


def test_exception_whose_str_raises_is_still_recorded(telemetry: Any) -> None:
    # The error message (and OTel's record_exception) call str(exc); a failing __str__ used to abort
    # the measurement before the outcome reached the registry.
    class Unprintable(Exception):
        status_code = 503

        def __str__(self) -> str:
            raise ValueError("no")

    error = Unprintable()

    @monitor(model="m", **telemetry.options())
    def call() -> None:
        raise error

    with pytest.raises(Unprintable) as caught:
        call()
    assert caught.value is error
    (record,) = telemetry.recorder.records
    assert (record.outcome, record.kwargs["error_type"]) == (Outcome.FAILURE, "503")
    (span,) = telemetry.spans()
    assert span.attributes is not None and span.attributes["error.type"] == "503"


def test_stream_collected_by_the_gc_under_the_registry_lock_does_not_deadlock(telemetry: Any) -> None:
    # The cyclic GC runs finalizers in whichever thread allocated, possibly inside the registry's own
    # locked section. An abandoned stream's __del__ used to call registry.record() right there: the
    # thread took its own non-reentrant lock again and hung, and every later call with it.
    import gc
    import threading

    from otel_model_health.health.registry import HealthRegistry

    registry = HealthRegistry()
    options = {**telemetry.options(), "registry": registry}

    class Stream:
        def __iter__(self) -> Any:
            return self

        def __next__(self) -> Any:
            return {"choices": []}

    @monitor(model="m", provider="openai", **options)
    def call() -> Any:
        return Stream()

    stream = call()
    next(stream)
    cycle: list[Any] = [stream]
    cycle.append(cycle)  # only the cyclic GC can free the abandoned proxy now
    del stream, cycle

    def locked_section() -> None:
        with registry._lock:  # an allocation in any locked section may start a collection
            gc.collect()

    worker = threading.Thread(target=locked_section, daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive()
    # The deferred end is delivered at the next call: the abandoned stream counts as cancelled.
    assert registry.get(provider="openai", model="m") is None
    next_stream = call()
    assert registry.get(provider="openai", model="m") is not None
    (span,) = telemetry.spans()
    assert span.attributes is not None
    assert (span.attributes["model_health.outcome"], span.attributes["error.type"]) == (
        "neutral",
        "cancelled",
    )
    del next_stream  # kept until here: it is the next call, not the collected one
