"""guarded("where"): an Exception inside the block is reported and swallowed, the code after it runs;
anything else passes through."""

from __future__ import annotations

import logging

import pytest

from otel_model_health._internal import guarded, internal_error_count


def _fallback_after_a_failure() -> str:
    with guarded("test.fallback"):
        raise ValueError("telemetry bug")
    return "fallback"


def _result_of_the_block() -> str:
    with guarded("test.result"):
        return "result"
    return "fallback"


def test_an_exception_is_reported_and_the_code_after_the_block_runs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="otel_model_health")
    before = internal_error_count()
    assert _fallback_after_a_failure() == "fallback"
    assert internal_error_count() == before + 1
    (record,) = [r for r in caplog.records if "test.fallback" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)


def test_a_block_without_error_reports_nothing() -> None:
    before = internal_error_count()
    assert _result_of_the_block() == "result"
    assert internal_error_count() == before


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), GeneratorExit(), SystemExit(3)])
def test_base_exceptions_pass_through(exc: BaseException) -> None:
    before = internal_error_count()
    with pytest.raises(type(exc)), guarded("test.base"):
        raise exc
    assert internal_error_count() == before
