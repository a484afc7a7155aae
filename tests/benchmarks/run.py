"""Runs every section, profiles the missed targets, prints the table and writes docs/performance.md."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from .bench_calls import bench_decorator, bench_health, bench_scale
from .bench_transport import bench_concurrency, bench_streams, bench_transport
from .harness import Providers, Results, Scale, ServerProcess, profile_summary
from .report import console, markdown, svg

ROOT: Final = Path(__file__).resolve().parents[2]

INTRO: Final = """
A gateway runs this library on every model call, so its cost is part of what it offers. This page is
written by `make bench` (`python -m tests.benchmarks`); the figures below are from the last run, on the
machine described at the end. Run it again on yours: absolute times differ from machine to machine, the
ratios much less.

## How it measures

- **Against a baseline, in the same run.** Every candidate (our transport, `@monitor`, `registry.record`)
  runs round by round interleaved with its baseline (a bare client, a bare call, hand-written
  instruments, opentelemetry-instrumentation-httpx, pybreaker, purgatory), the order reversing each
  round. A figure is the median over the rounds of candidate minus baseline of the same round, so load
  from other processes and CPU frequency changes shift both sides alike.
- **Client CPU, server elsewhere.** Transport figures count `time.process_time()` of the benchmark
  process; the simulated provider (`python -m otel_model_health.testing --port 0`) runs in a child
  process, so its work is not counted. Process time includes the SDK's own threads (the
  `BatchSpanProcessor` worker): exporting is part of the price.
- **The same OpenTelemetry SDK setup for every candidate**: a `TracerProvider` with a
  `BatchSpanProcessor` on an exporter that does nothing and returns `SUCCESS`, and a `MeterProvider`
  with an `InMemoryMetricReader`. Spans are sampled (the default), so the figures are the full cost.
  opentelemetry-instrumentation-httpx is applied with `HTTPX2ClientInstrumentor.instrument_client`
  (`HTTPXClientInstrumentor` for `httpx`); it also injects the `traceparent` header, which ours does not.
- **Streams**: a 200-chunk SSE chat completion (`x-simulated-chunks: 200`). The first-chunk latency is
  wall-clock from the request to the first bytes the caller reads. "No buffering" is checked with a
  slow stream (10 chunks, 20 ms apart): the first chunk must reach the caller within the first 30% of
  the stream's time, in as many reads as without instrumentation.
- **Health record**: `registry.record(...)` in a loop on one key (success; failure on a model whose
  breaker is open, the steady state of an outage; rate-limited), and `ModelHealthSpanProcessor.on_end`
  for an already finished foreign GenAI span. The baselines are a bare SDK span (`start_span().end()`),
  `pybreaker.CircuitBreaker.call` and a purgatory breaker around a no-op (a raising function on the
  failure path, the breaker then open), each minus the bare loop.
- **Scale**: `tracemalloc` over 500 keys, each with a full window (20 outcomes, one failure with a
  message), keys included; then 500 more keys evicting the first. Record cost cycling through 5 keys vs
  500 keys.
- **Concurrency**: wall-clock throughput of 2 threads sharing one `httpx2.Client`, and of 200 asyncio
  tasks sharing one `httpx2.AsyncClient` (100 keep-alive connections), ours over bare. Client and server
  share the machine's cores, so this is a throughput of the whole loop, as in a gateway.
- A missed target gets a cProfile of its candidate workload (below).

## Reproduce

```
make bench                                  # full run, a few minutes; rewrites this page
.venv/bin/python -m tests.benchmarks --quick  # a fast, rough run (does not rewrite this page)
.venv/bin/python -m tests.benchmarks --help
```
"""


# Why a target is missed and what would reach it, from the profiles (shown under a MISS only). Keyed by
# the start of the target's name; keep in step with the library when it changes.
ANALYSIS: Final = {
    "Transport added CPU": (
        "Ours does more per call than otel-httpx (15 span attributes vs 3, three histogram records vs one, a "
        "registry record, a scan of the request body and a full `json.loads` of the response body), and "
        "costs about as much. In the profile the time splits between `observer._finish_json` (decode + "
        "`json.loads` + `read_response` of a body the SDK parses again), `measurement._finish` (three "
        "`Histogram.record` calls, each hashing its attribute dict in the SDK, plus `registry.record`) and "
        "`transport._Core.start` (`jsonscan.top_level_fields`, header reads, `capture_content_enabled()` "
        "reading `os.environ` every call). To reach 0.5x: read only the response fields needed (`model`, "
        "`id`, `usage`, `finish_reason`) with the jsonscan approach instead of `json.loads` of the whole "
        "body; build the metric attribute dict once per (key, server, status) and reuse it (the SDK caches "
        "by attribute set); resolve `capture_content` once per `defaults.generation` instead of per call."
    ),
    "Streaming": (
        "`ObservedSyncStream.__iter__` (instrument/httpx_support.py) calls `observer.chunk(chunk)` before "
        "`yield chunk`: the SSE parse, `json.loads` and `read_stream_event` of every event in a read happen "
        "before the caller sees that read. With a fast server the first read holds many of the 200 events, "
        "so the first chunk waits for all of them (plus the span start). Fix: note the first-chunk time "
        "before the yield, and parse the chunk after the caller got it (`yield chunk` then "
        "`observer.chunk(chunk)` in a try/finally), in both the sync and the async stream; the CPU per "
        "stream stays (~10 us per event: `json.loads` per event and `read_stream_event`); parse only the "
        "events that can carry usage, finish reason or an error (e.g. skip `json.loads` of chunks whose "
        'bytes contain neither `finish_reason":"` with a value nor `usage` nor `error`).'
    ),
    "Concurrency": (
        "Client and server share the machine's two cores, so every microsecond of client CPU is taken from "
        "the server too: throughput falls with the transport's added CPU per call (section 1). Locking is "
        "not a likely cause: the registry lock is held for O(1) work (about 1.3 us per success record, "
        "section 4). What reaches the target is what reduces the per-call CPU of section 1."
    ),
    "Decorator": (
        "Same span, attributes, metric and registry record as the hand-written code, but through more "
        "Python layers per call (wrapt wrapper, `CallPlan.start` with an `ArgSpec.lookup` of `model` and "
        "`stream`, `start_call` reading the context twice (`suppressed()` and `current_call()`), "
        "`activate()` building two contexts (`set_span_in_context` then `set_value`), `observe_result` -> "
        "`finish_response` -> `finish_complete` -> `finish` -> `_finish`, `_set_span_result` building a "
        "dict for one attribute). Fix: read the current context once in `start_call` for both keys; set "
        "span and active call in one `Context` copy; on the VALUE path of `observe_result` skip "
        "`ResponseInfo`/`read_response` when the result is None or not a response type (cached per type "
        "like `result_kind`); use `span.set_attribute` when only the outcome is added."
    ),
    "Health record failure": (
        "`HealthRegistry._record_slow_locked` (health/registry.py) calls `redact.scrub(str(error_message))` "
        "under the registry lock on every failure: more than half of the call. Fix: keep the raw message "
        "and scrub it when it is read (snapshot / transition), or remember the last raw message per entry "
        "and skip the scrub when it is the same (an outage repeats one message). The transport already "
        "passes scrubbed messages, so a `scrubbed=True` argument would also avoid the double work."
    ),
    "Health on_end": (
        "`ModelHealthSpanProcessor._record` (health/processor.py) builds a new `ModelKey` per span "
        "(`keys._clean` x3, `normalize_provider`), reads three attributes through `_str_attr`, converts the "
        "start time with `registry.to_monotonic` (two clock reads), classifies, and takes the processor "
        "lock for `_mark`; the failure path adds the registry's scrub (see above). Fix: cache ModelKeys "
        "per raw (provider, model, gateway) tuple in a small bounded dict, as the transport does; compute "
        "the clock offset once per call of `on_end` or pass the span's start as epoch and convert in the "
        "registry's slow path only (the fast success path does not use `started_at`)."
    ),
    "Record cost flat": (
        "Every record here takes the fast success path; the profile shows nothing but "
        "`HealthRegistry.record` "
        "itself and `CountWindow.record`. The difference between 5 and 500 keys is memory locality "
        "(`OrderedDict.get` + `move_to_end` and the entry's objects miss the CPU cache more often with 500 "
        "entries), and this ratio moves between runs on a loaded machine (1.06x and 1.23x in two full runs "
        "of the same code). Nothing in the code grows with the key count; if it has to be flatter, drop the "
        "LRU `move_to_end` from the fast path (keep a per-entry last-use counter and evict the smallest "
        "when over the cap, an O(n) scan that only runs on insertion past the cap)."
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a fast, rough run (fewer calls and rounds)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every iteration count by this")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the Markdown page to write (default: docs/performance.md for a full run, none with --quick)",
    )
    parser.add_argument("--no-profile", action="store_true", help="do not profile missed targets")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated sections to run: transport,streams,decorator,health,scale,concurrency",
    )
    return parser


SECTIONS: Final = ("transport", "streams", "decorator", "health", "scale", "concurrency")


def run(scale: Scale, only: Sequence[str]) -> Results:
    results = Results()
    providers = Providers.create()
    try:
        if {"transport", "streams", "concurrency"} & set(only):
            with ServerProcess() as server:
                if "transport" in only:
                    _progress("1. transport")
                    results.extend(bench_transport(server.base_url, scale, providers))
                if "streams" in only:
                    _progress("2. streams")
                    results.extend(bench_streams(server.base_url, scale, providers))
                if "concurrency" in only:
                    _progress("6. concurrency")
                    results.extend(bench_concurrency(server.base_url, scale, providers))
                _profile(results, scale)  # their workloads need the server
        if "decorator" in only:
            _progress("3. decorator")
            results.extend(bench_decorator(scale, providers))
        if "health" in only:
            _progress("4. health record")
            results.extend(bench_health(scale, providers))
        if "scale" in only:
            _progress("5. scale")
            results.extend(bench_scale(scale))
        _profile(results, scale)
    finally:
        providers.shutdown()
    return results


def _progress(what: str) -> None:
    print(f"… {what}", file=sys.stderr, flush=True)


def _profile(results: Results, scale: Scale) -> None:
    if not scale.profile:
        return
    for target in results.targets:
        if not target.passed and target.workload is not None and not target.profile_text:
            _progress(f"profiling MISS: {target.name}")
            target.profile_text = profile_summary(target.workload)
        if not target.passed:
            target.reason = next((text for key, text in ANALYSIS.items() if target.name.startswith(key)), "")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    factor = args.scale * (0.2 if args.quick else 1.0)
    scale = Scale(factor=factor, round_factor=0.4 if args.quick else 1.0, profile=not args.no_profile)
    only = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = set(only) - set(SECTIONS)
    if unknown:
        print(f"unknown section(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    started = time.monotonic()
    results = run(scale, only)
    elapsed = time.monotonic() - started
    print(console(results))
    out: Path | None = args.out
    if out is None and not args.quick and args.scale == 1.0 and len(only) == len(SECTIONS):
        out = ROOT / "docs" / "performance.md"
    if out is not None:
        svg_path = out.with_suffix(".svg")
        svg_path.write_text(svg(results.panels), encoding="utf-8")
        command = "python -m tests.benchmarks " + shlex.join(argv if argv is not None else sys.argv[1:])
        out.write_text(
            markdown(
                results, command=command.strip(), elapsed_s=elapsed, svg_name=svg_path.name, intro=INTRO
            ),
            encoding="utf-8",
        )
        print(f"\nwrote {out} and {svg_path.name} ({elapsed:.0f} s)")
    return 0
