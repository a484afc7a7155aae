"""Per key: one history per matching SLO, the burn rates read from it, and the alerts' states.

``Plan`` is an SLO compiled once (outcome table, windows, history layout); ``KeySlos`` (a tuple of
``Series``) is what a ``ModelState`` carries when at least one SLO matches its key (keys without one
carry None and pay one attribute read per record). ``Series.record`` runs under the registry's lock on
every call of such a key: it classifies the call and bumps one counter per SLO. Alerts are evaluated
when a minute closes, on a bad event at most every ``EVALUATE_EVERY_S``, and on reads (metrics
collection, /health/slo), so an alert also resolves when traffic stops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase
from typing import Final, NamedTuple

from opentelemetry.trace import SpanContext

from ..health.history import History, Layout
from ..health.types import CallResult
from ..keys import ModelKey
from ..outcomes import Outcome
from .definition import SLO, BurnRateAlert

_EXCLUDED: Final = 0
_GOOD: Final = 1
_BAD: Final = 2

# A bad event re-evaluates the alerts at most this often (simulated or real seconds): a 100% outage at
# 1 call/s against a 99.9% SLO crosses the 14.4x / 1 h line after 52 s and pages by the next evaluation.
EVALUATE_EVERY_S: Final = 5.0


class AlertChange(NamedTuple):
    """An alert that started or resolved, for the registry to turn into a transition."""

    series: Series
    alert: BurnRateAlert
    started: bool
    long_burn_rate: float
    short_burn_rate: float
    error_budget_remaining: float
    span_context: SpanContext | None  # a bad call of the short window, when one is known


Notify = Callable[[AlertChange], None]


class Plan:
    """An SLO compiled for the record path."""

    __slots__ = ("alerts", "budget", "codes", "fast_s", "first_chunk_s", "layout", "operation", "ops", "slo")

    def __init__(self, slo: SLO) -> None:
        self.slo = slo
        self.budget = 1.0 - slo.objective
        self.operation = slo.operation  # a glob; "*" matches every operation
        codes = {Outcome.SUCCESS: _GOOD, Outcome.FAILURE: _BAD}
        if slo.rate_limited_is_bad:
            codes[Outcome.RATE_LIMITED] = _BAD
        if slo.neutral_is_bad:
            codes[Outcome.NEUTRAL] = _BAD
        self.codes = codes
        self.fast_s = slo.latency_threshold_s  # latency SLI: a success at or over this is bad
        self.first_chunk_s = slo.first_chunk_threshold_s
        self.alerts = tuple((a, a.long_window_s, a.short_window_s, a.burn_rate) for a in slo.alerts)
        longest = max(long for _, long, _, _ in self.alerts)
        shortest = min(short for _, _, short, _ in self.alerts)
        self.layout = Layout.for_windows(longest, slo.period_s, shortest)
        # operation -> matches, shared by every key's series (a handful of values; bounded anyway)
        self.ops: dict[str, bool] = {}

    def windows(self) -> list[float]:
        """Every window an SLO reads, shortest first (its alerts' and its period)."""
        found = {w for _, long, short, _ in self.alerts for w in (long, short)}
        found.add(self.slo.period_s)
        return sorted(found)

    def classify(self, result: CallResult) -> int:
        code = self.codes.get(result.outcome, _EXCLUDED)
        if code == _GOOD and (self.fast_s is not None or self.first_chunk_s is not None):
            first_chunk = result.first_chunk_s
            if first_chunk is not None and self.first_chunk_s is not None:
                return _GOOD if first_chunk < self.first_chunk_s else _BAD
            latency = result.latency_s
            if self.fast_s is not None and (latency is None or latency >= self.fast_s):
                return _BAD  # a latency SLI cannot call a call of unknown duration fast
        return code


def _operation_matches(pattern: str, operation: str) -> bool:
    return fnmatchcase(str(operation), pattern)


class Series:
    """One SLO's history and alert states for one key."""

    __slots__ = (
        "active",
        "bad_at",
        "bad_context",
        "codes",
        "fast_s",
        "history",
        "key",
        "latency_sli",
        "next_eval",
        "ops",
        "plan",
    )

    def __init__(self, plan: Plan, key: ModelKey, now: float) -> None:
        self.plan = plan
        self.key = key
        self.codes = plan.codes  # read per record: one attribute, not two
        self.latency_sli = plan.slo.sli == "latency"
        # A latency SLI on the whole call's duration (no first-chunk threshold) is judged inline.
        self.fast_s = plan.fast_s if plan.first_chunk_s is None else None
        self.history = History(plan.layout, now)
        self.active = [False] * len(plan.alerts)
        self.bad_context: SpanContext | None = None
        self.bad_at = -1e300
        self.next_eval = now
        self.ops = plan.ops  # the plan's: one small dict per SLO, not per key

    def record(self, result: CallResult, now: float, notify: Notify) -> None:
        """The hot path: classify, bump the current minute's counter (the rest only when due)."""
        matches = self.ops.get(result.health_operation)
        if matches is None:
            matches = self._learn(result.health_operation)
        if not matches:
            return
        code = self.codes.get(result.outcome, _EXCLUDED)
        if code == _GOOD:
            if self.latency_sli:
                fast_s = self.fast_s
                if fast_s is None:
                    code = self.plan.classify(result)
                elif (latency := result.latency_s) is None or latency >= fast_s:
                    code = _BAD
        elif code == _EXCLUDED:
            return
        history = self.history
        closed = now >= history.edge and history.advance(now)
        if code == _GOOD:
            history.good[history.pos] += 1
        else:
            history.bad[history.pos] += 1
            self.bad_context = result.span_context
            self.bad_at = now
        if closed or (code == _BAD and now >= self.next_eval):
            self.evaluate(now, notify)

    def _learn(self, operation: str) -> bool:
        matches = _operation_matches(self.plan.operation, operation)
        if len(self.ops) < 64:  # bounded: operations are a handful of values
            self.ops[operation] = matches
        return matches

    def burn_rate(self, now: float, window_s: float) -> float:
        good, bad = self.history.window(now, window_s)
        total = good + bad
        return (bad / total) / self.plan.budget if total > 0 else 0.0

    def budget_remaining(self, now: float) -> float:
        return 1.0 - self.burn_rate(now, self.plan.slo.period_s)

    def evaluate(self, now: float, notify: Notify) -> None:
        """Start or resolve alerts (docs/slo.md: both windows above to start, the short one to stay)."""
        self.next_eval = now + EVALUATE_EVERY_S
        rates: dict[float, float] = {}
        remaining: float | None = None
        for i, (alert, long_s, short_s, threshold) in enumerate(self.plan.alerts):
            short = rates.get(short_s)
            if short is None:
                short = rates[short_s] = self.burn_rate(now, short_s)
            was = self.active[i]
            if was and short > threshold:
                continue
            if not was and short <= threshold:
                continue
            long = rates.get(long_s)
            if long is None:
                long = rates[long_s] = self.burn_rate(now, long_s)
            if not was and long <= threshold:
                continue
            self.active[i] = not was
            if remaining is None:
                remaining = self.budget_remaining(now)
            context = self.bad_context if now - self.bad_at <= short_s else None
            notify(AlertChange(self, alert, not was, long, short, remaining, context))


# A key's series: one per matching SLO (a tuple, so a record loops without another call).
KeySlos = tuple[Series, ...]


def evaluate_all(key_slos: KeySlos, now: float, notify: Notify) -> None:
    """On reads: what the clock made due (an alert resolves when traffic stops, too)."""
    for series in key_slos:
        series.history.advance(now)
        series.evaluate(now, notify)


def compile_slos(slos: Sequence[SLO]) -> tuple[Plan, ...]:
    return tuple(Plan(slo) for slo in slos)


def track(plans: Sequence[Plan], key: ModelKey, now: float) -> KeySlos | None:
    """The key's series, or None when no SLO matches it (then the key pays nothing)."""
    series = tuple(Series(plan, key, now) for plan in plans if plan.slo.matches_key(key))
    return series or None
