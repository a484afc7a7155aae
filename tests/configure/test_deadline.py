"""_deadline: blocking calls run side by side until one deadline; what each returned, or that it did not."""

from __future__ import annotations

import threading
import time

import pytest

from otel_model_health._deadline import MAX_BUDGET_S, budget, run_until
from otel_model_health._internal import internal_error_count


def test_each_call_reports_whether_it_finished_in_time_with_a_true_value() -> None:
    release = threading.Event()

    def boom() -> bool:
        raise RuntimeError("exporter exploded")

    errors_before = internal_error_count()
    try:
        results = run_until(
            time.monotonic() + 0.2,
            [
                ("test.true", lambda: True),
                ("test.false", lambda: False),
                ("test.none", lambda: None),
                ("test.raises", boom),
                ("test.hangs", lambda: release.wait(60)),  # still running at the deadline
            ],
        )
    finally:
        release.set()
    assert results == [True, False, False, False, False]
    assert internal_error_count() == errors_before + 1  # the exception was reported, not raised


def test_calls_run_side_by_side() -> None:
    # Each call waits for the other: run one after the other, neither could finish.
    first, second = threading.Event(), threading.Event()

    def meet(mine: threading.Event, other: threading.Event) -> bool:
        mine.set()
        return other.wait(30)

    assert run_until(
        time.monotonic() + 30, [("a", lambda: meet(first, second)), ("b", lambda: meet(second, first))]
    ) == [
        True,
        True,
    ]


@pytest.mark.parametrize(
    ("timeout", "seconds"),
    [
        (2, 2.0),
        (0.5, 0.5),
        (-1, 0.0),
        (float("nan"), 0.0),
        (float("inf"), MAX_BUDGET_S),
        (True, 0.0),
        ("5", 0.0),
    ],
)
def test_budget_turns_any_timeout_into_seconds_to_wait(timeout: object, seconds: float) -> None:
    assert budget(timeout) == seconds
