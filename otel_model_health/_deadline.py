"""Blocking calls of other libraries, run together under one deadline.

Some calls that flush or shut down telemetry do not honour a timeout: ``BatchSpanProcessor.force_flush``
ignores its own, ``TracerProvider.shutdown`` takes none, and an OTLP/HTTP export in flight waits for its
socket timeout whatever is asked of it. So each call runs in its own daemon thread and the caller waits
for all of them until the deadline, then moves on. A call still running at the deadline goes on in the
background: a daemon thread never holds up interpreter exit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final

from ._internal import report_internal_error

# A wait longer than this overflows threading's timeouts; no flush needs more than a day.
MAX_BUDGET_S: Final = 86_400.0


def budget(timeout_s: object) -> float:
    """``timeout_s`` as seconds to wait: negative, NaN or not a number → 0, capped at ``MAX_BUDGET_S``."""
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or math.isnan(timeout_s):
        return 0.0
    return min(max(float(timeout_s), 0.0), MAX_BUDGET_S)


def left(deadline: float) -> float:
    """Seconds from now until ``deadline`` (``time.monotonic()`` based), never negative."""
    return max(0.0, deadline - time.monotonic())


def run_until(deadline: float, calls: Sequence[tuple[str, Callable[[], object]]]) -> list[bool]:
    """Run every ``(where, call)`` at once, each in a daemon thread; wait for all until ``deadline``.

    Returns, per call, True if it finished in time and returned a true value. A call that raised is
    reported as an internal error under ``where`` and counts as False.
    """
    results = [False] * len(calls)
    done = [threading.Event() for _ in calls]

    def run(index: int) -> None:
        where, call = calls[index]
        try:
            results[index] = bool(call())
        except Exception:
            report_internal_error(where)
        finally:
            done[index].set()

    for index, (where, _call) in enumerate(calls):
        thread = threading.Thread(target=run, args=(index,), name=f"otel_model_health.{where}", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # the interpreter no longer starts threads: run it here, unbounded
            run(index)
    for event in done:
        event.wait(left(deadline))
    return [result and event.is_set() for result, event in zip(results, done, strict=True)]
