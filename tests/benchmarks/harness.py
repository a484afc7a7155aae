"""Shared machinery: interleaved timing, the simulated provider in its own process, the SDK providers,
result records and cProfile summaries.

Method (docs/performance.md explains it for readers): a figure is never an absolute time alone. Each
candidate runs in the same round as its baseline, the order flipping every round so drift (other
processes, CPU frequency) hits both alike; a round's figure is per call, and the reported figure is the
median over rounds of the candidate-minus-baseline difference of the same round.
"""

from __future__ import annotations

import cProfile
import gc
import io
import pstats
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Self

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

Workload = Callable[[int], object]  # runs n calls

LIBRARY_PATH: Final = "otel_model_health"


# --- configuration -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    """How much work each benchmark does: ``factor`` scales the calls per round, ``round_factor`` the
    number of rounds (never fewer than 3: a median needs them)."""

    factor: float = 1.0
    round_factor: float = 1.0
    profile: bool = True

    def n(self, full: int) -> int:
        return max(2, round(full * self.factor))

    def r(self, full: int) -> int:
        return max(3, round(full * self.round_factor))


# --- results -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    section: str
    name: str
    value: float
    unit: str
    note: str = ""


@dataclass
class Target:
    name: str
    measured: str
    limit: str
    passed: bool
    # The candidate workload of this target, run under cProfile when the target is missed.
    workload: Callable[[], object] | None = None
    reason: str = ""
    profile_text: str = ""


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    baseline: bool = False  # drawn in the baseline colour


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    bars: tuple[Bar, ...]


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    panels: list[Panel] = field(default_factory=list)

    def figure(self, section: str, name: str, value: float, unit: str, note: str = "") -> None:
        self.figures.append(Figure(section, name, value, unit, note))

    def extend(self, other: Results) -> None:
        self.figures.extend(other.figures)
        self.targets.extend(other.targets)
        self.panels.extend(other.panels)


# --- timing ------------------------------------------------------------------------------------------
def interleave(
    variants: dict[str, Workload],
    *,
    n: int,
    rounds: int,
    clock: Callable[[], float] = time.process_time,
    warmup: bool = True,
) -> dict[str, list[float]]:
    """Per-call time of each variant, one sample per round; the order reverses every round."""
    names = list(variants)
    if warmup:
        for name in names:
            variants[name](max(1, n // 4))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            gc.collect()
            t0 = clock()
            variants[name](n)
            samples[name].append((clock() - t0) / n)
    return samples


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def paired_diff(candidate: Sequence[float], baseline: Sequence[float]) -> float:
    """Median over rounds of (candidate - baseline) of the same round."""
    return statistics.median(c - b for c, b in zip(candidate, baseline, strict=True))


def paired_ratio(candidate: Sequence[float], baseline: Sequence[float]) -> float:
    return statistics.median(c / b for c, b in zip(candidate, baseline, strict=True) if b > 0)


def us(seconds: float) -> float:
    return seconds * 1e6


# --- the SDK providers every candidate shares ----------------------------------------------------------
class NoopSpanExporter(SpanExporter):
    """Export succeeds and does nothing: the cost measured is the SDK's and ours, not a network's."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@dataclass
class Providers:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    reader: InMemoryMetricReader

    @classmethod
    def create(cls) -> Providers:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(NoopSpanExporter()))
        reader = InMemoryMetricReader()
        return cls(tracer_provider, MeterProvider(metric_readers=[reader]), reader)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


# --- the simulated provider, in its own process ---------------------------------------------------------
class ServerProcess:
    """``python -m otel_model_health.testing --port 0`` in a child process: its CPU is not ours."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> Self:
        proc = self._proc = subprocess.Popen(
            [sys.executable, "-m", "otel_model_health.testing", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://[\d.]+:\d+)", line)
        if match is None:
            self._stop()
            raise RuntimeError(f"the simulated provider did not start: {line!r}")
        self.base_url = match.group(1)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        self._proc = None


# --- profiles of missed targets ---------------------------------------------------------------------------
_SITE: Final = re.compile(r".*/(otel_model_health/.*)$")


def profile_summary(workload: Callable[[], object], *, top: int = 10) -> str:
    """cProfile the workload; the library functions with the largest cumulative share of its time."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        workload()
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = stats.total_tt  # type: ignore[attr-defined]
    rows: list[tuple[float, float, int, str]] = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        match = _SITE.match(filename.replace("\\", "/"))
        if match is None:
            continue
        rows.append((cumtime, tottime, ncalls, f"{match.group(1)}:{line}({func})"))
    rows.sort(reverse=True)
    lines = [f"{'cum %':>6} {'own %':>6} {'calls':>8}  function (profile total {total:.3f} s)"]
    for cumtime, tottime, ncalls, where in rows[:top]:
        lines.append(f"{100 * cumtime / total:6.1f} {100 * tottime / total:6.1f} {ncalls:8d}  {where}")
    # The cumulative view names the paths; the own-time view names where the time is actually spent.
    own = sorted(rows, key=lambda row: row[1], reverse=True)[: max(3, top // 2)]
    lines.append(f"-- by own time: {', '.join(f'{w} {100 * t / total:.1f}%' for _c, t, _n, w in own)}")
    return "\n".join(lines)
