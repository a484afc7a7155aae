"""The bucketed history against a brute-force count over the raw events, on a simulated month.

The documented bound (health/history.py, docs/slo.md): a window's counts lie between the exact counts of
the window starting at the end of the bucket that holds its start and of the one starting at that bucket's
start, where the bucket is 1 minute, 1 hour or 1 day depending on how old the start is.
"""

from __future__ import annotations

import math
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

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


def exact(events: list[tuple[float, bool]], start: float, now: float) -> tuple[int, int]:
    good = sum(1 for t, ok in events if start <= t <= now and ok)
    bad = sum(1 for t, ok in events if start <= t <= now and not ok)
    return good, bad


def check(history: History, events: list[tuple[float, bool]], now: float, window: float) -> None:
    start = now - window
    oldest_held = (math.floor(now / LAYOUT.tiers[-1].width_s) - LAYOUT.tiers[-1].count + 1) * (
        LAYOUT.tiers[-1].width_s
    )
    start = max(start, oldest_held)  # a window longer than the history is clamped to it
    width = LAYOUT.resolution_at(now, start)
    edge = math.floor(start / width) * width
    wide, narrow = exact(events, edge, now), exact(events, edge + width, now)
    good, bad = history.window(now, window)
    assert narrow[0] - 1e-6 <= good <= wide[0] + 1e-6, (now, window, width, good, narrow, wide)
    assert narrow[1] - 1e-6 <= bad <= wide[1] + 1e-6, (now, window, width, bad, narrow, wide)
    # Burn rates: the pro-rata edge mixes two exact windows whose starts lie in that bucket, so the
    # error ratio lies between the ratios of exact windows starting at the bucket's edges or its events.
    if good + bad > 1e-9:
        starts = [edge, edge + width] + [t for t, _ in events if edge <= t <= edge + width]
        ratios = [b / (g + b) for g, b in (exact(events, s, now) for s in starts) if g + b]
        ratio = bad / (good + bad)
        assert min(ratios) - 1e-9 <= ratio <= max(ratios) + 1e-9


@settings(max_examples=60, deadline=None)
@given(steps=steps, start=st.floats(0, DAY))
def test_windows_match_brute_force_within_one_bucket(
    steps: list[tuple[float, int, float, float]], start: float
) -> None:
    now = 1_000_000.0 + start
    history = History(LAYOUT, now)
    events: list[tuple[float, bool]] = []
    for gap, count, bad_share, window in steps:
        now += gap
        bad_every = max(1, round(1 / bad_share)) if bad_share > 0.01 else 0
        for i in range(count):
            ok = bad_every == 0 or i % bad_every != 0
            history.add(ok, now)
            events.append((now, ok))
            now += 1.0
        check(history, events, now, window)
        for w in WINDOWS:
            check(history, events, now, w)


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
