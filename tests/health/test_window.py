"""Count and time windows: running totals, ring eviction, ageing, latencies."""

from __future__ import annotations

import math

from otel_model_health.health.window import (
    TIME_WINDOW_LATENCY_SAMPLES,
    CountWindow,
    TimeWindow,
    make_window,
    percentile,
)


def test_count_window_keeps_last_n_outcomes() -> None:
    w = CountWindow(3)
    w.record(False, 1.0, 0.0)
    w.record(True, 2.0, 0.0)
    w.record(True, 3.0, 0.0)
    assert (w.successes, w.failures) == (2, 1)
    w.record(True, 4.0, 0.0)  # pushes the failure out
    assert (w.successes, w.failures) == (3, 0)
    assert sorted(w.latencies(0.0)) == [2.0, 3.0, 4.0]
    w.record(False, None, 0.0)  # pushes 2.0 out; no latency for this one
    assert (w.successes, w.failures) == (2, 1)
    assert sorted(w.latencies(0.0)) == [3.0, 4.0]


def test_count_window_totals_match_brute_force() -> None:
    w = CountWindow(7)
    history: list[bool] = []
    for i in range(200):
        ok = (i * 7919) % 5 != 0
        w.record(ok, float(i), 0.0)
        history.append(ok)
        last = history[-7:]
        assert w.successes == sum(last)
        assert w.failures == len(last) - sum(last)


def test_count_window_reset() -> None:
    w = CountWindow(4)
    for _ in range(6):
        w.record(False, 1.0, 0.0)
    w.reset()
    assert (w.successes, w.failures) == (0, 0)
    assert w.latencies(0.0) == []
    w.record(True, 5.0, 0.0)
    assert (w.successes, w.failures) == (1, 0)


def test_time_window_ages_out_buckets() -> None:
    w = TimeWindow(10)
    w.record(False, 1.0, 100.2)
    w.record(True, 2.0, 105.9)
    w.advance(109.99)
    assert (w.successes, w.failures) == (1, 1)
    w.advance(110.0)  # second 100 leaves a 10-second window
    assert (w.successes, w.failures) == (1, 0)
    assert w.latencies(110.0) == [2.0]
    w.advance(116.0)
    assert (w.successes, w.failures) == (0, 0)
    assert w.latencies(116.0) == []


def test_time_window_long_gap_clears_everything_once() -> None:
    w = TimeWindow(5)
    for t in range(5):
        w.record(False, None, float(t))
    assert w.failures == 5
    w.advance(1e9)  # a huge jump clears at most the whole ring
    assert (w.successes, w.failures) == (0, 0)


def test_time_window_clock_backwards_records_into_newest_bucket() -> None:
    w = TimeWindow(3)
    w.record(True, None, 50.0)
    w.record(False, None, 10.0)
    assert (w.successes, w.failures) == (1, 1)
    w.advance(53.0)
    assert (w.successes, w.failures) == (0, 0)


def test_time_window_latency_samples_are_bounded() -> None:
    w = TimeWindow(60)
    for i in range(TIME_WINDOW_LATENCY_SAMPLES + 100):
        w.record(True, float(i), 1.0)
    lat = w.latencies(1.0)
    assert len(lat) == TIME_WINDOW_LATENCY_SAMPLES
    assert min(lat) == 100.0
    w.reset()
    assert w.latencies(1.0) == []


def test_make_window_and_percentile() -> None:
    assert isinstance(make_window("count", 3), CountWindow)
    assert isinstance(make_window("time", 3), TimeWindow)
    assert percentile([], 0.5) is None
    values = [float(i) for i in range(1, 21)]
    assert percentile(values, 0.5) == 10.0
    assert percentile(values, 0.95) == 19.0
    assert percentile([3.0], 0.95) == 3.0
    assert not math.isnan(percentile([1.0, 2.0], 0.0) or 0.0)
