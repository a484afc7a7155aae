"""The bucketed history against a brute-force count over the raw events, on a simulated month.

The documented bound (health/history.py, docs/slo.md): a window's counts lie between the exact counts of
the window starting at the end of the bucket that holds its start and of the one starting at that bucket's
start, where the bucket is 1 minute, 1 hour or 1 day depending on how old the start is.
"""

from __future__ import annotations

import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st
from kit.slo_reference import EventLog

from otel_model_health.health.history import History, Layout

DAY = 86400.0
LAYOUT = Layout.for_windows(3 * DAY, 30 * DAY)
WINDOWS = (300.0, 1800.0, 3600.0, 6 * 3600.0, 3 * DAY, 30 * DAY)

steps = st.lists(
    st.tuples(
        st.one_of(  # time to the next burst: seconds, minutes, hours or days
            st.floats(0, 5), st.floats(0, 600), st.floats(0, 4 * 3600), st.floats(0, 3 * DAY)
        ),
        st.integers(1, 40),  # events in the burst, one per second
        st.floats(0, 1),  # the burst's share of bad events
        st.one_of(st.sampled_from(WINDOWS), st.floats(1, 31 * DAY)),  # a window to check afterwards
    ),
    min_size=1,
    max_size=60,
)


def check(history: History, log: EventLog, now: float, window: float) -> None:
    layout = history.layout
    edge, width = log.edge_bucket(layout, now, window)
    wide, narrow = log.counts(edge, now), log.counts(edge + width, now)
    good, bad = history.window(now, window)
    assert narrow[0] - 1e-6 <= good <= wide[0] + 1e-6, (now, window, width, good, narrow, wide)
    assert narrow[1] - 1e-6 <= bad <= wide[1] + 1e-6, (now, window, width, bad, narrow, wide)
    # The error ratio (a burn rate with a budget of 1) within the exact ratios of windows starting in
    # that bucket: the pro-rata edge mixes two of them.
    low, high = log.burn_bracket(layout, now, window, 1.0)
    ratio = bad / (good + bad) if good + bad > 1e-9 else 0.0
    if good + bad > 1e-9:
        assert low - 1e-9 <= ratio <= high + 1e-9


def replay(
    history: History,
    now: float,
    steps: list[tuple[float, int, float, float]],
    *,
    spacing: float,
    windows: tuple[float, ...],
) -> None:
    """Bursts of events ``spacing`` apart, each burst followed by checks of its window and ``windows``."""
    log = EventLog()
    for gap, count, bad_share, window in steps:
        now += gap
        bad_every = max(1, round(1 / bad_share)) if bad_share > 0.01 else 0
        for i in range(count):
            ok = bad_every == 0 or i % bad_every != 0
            history.add(ok, now)
            log.add(now, ok)
            now += spacing
        for w in (window, *windows):
            check(history, log, now, w)


@settings(max_examples=60, deadline=None)
@given(steps=steps, start=st.floats(0, DAY))
def test_windows_match_brute_force_within_one_bucket(
    steps: list[tuple[float, int, float, float]], start: float
) -> None:
    now = 1_000_000.0 + start
    replay(History(LAYOUT, now), now, steps, spacing=1.0, windows=WINDOWS)


SHORT = Layout.for_windows(60.0, 600.0, 5.0)  # a demo's windows: 1-second buckets, then minutes
SHORT_WINDOWS = (5.0, 10.0, 60.0, 600.0)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.one_of(st.floats(0, 3), st.floats(0, 90), st.floats(0, 900)),
            st.integers(1, 20),
            st.floats(0, 1),
            st.one_of(st.sampled_from(SHORT_WINDOWS), st.floats(1, 700)),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_short_windows_match_brute_force_within_one_bucket(
    steps: list[tuple[float, int, float, float]],
) -> None:
    assert [t.width_s for t in SHORT.tiers] == [1, 60]
    now = 5_000.5
    replay(History(SHORT, now), now, steps, spacing=0.25, windows=SHORT_WINDOWS)


def test_exact_when_the_window_starts_on_a_bucket_edge() -> None:
    now = 3600.0 * 1000
    history = History(LAYOUT, now)
    for i in range(600):
        history.add(i % 10 != 0, now + i)
    assert history.window(now + 600, 600) == (540.0, 60.0)  # starts exactly at a minute edge
    # Starting mid-minute: half of the minute [240 s, 300 s) is counted (54 good, 6 bad in it).
    assert history.window(now + 600, 330) == (297.0, 33.0)


def test_a_record_allocates_nothing_that_stays() -> None:
    now = 1000.0
    history = History(LAYOUT, now)
    for _ in range(1000):  # warm: ints and the first bucket
        history.add(True, now)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(10000):
            history.add(i % 7 != 0, now + 0.001 * i)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before <= 64
    assert LAYOUT.bytes_per_series() <= 4096
