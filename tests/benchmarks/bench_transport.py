"""Sections 1, 2 and 6: the transport against a bare client and opentelemetry-instrumentation-httpx,
streams, and throughput under threads and asyncio tasks. The simulated provider runs in a child
process, so ``time.process_time`` here is the client's CPU alone."""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from otel_model_health import HealthRegistry, semconv
from otel_model_health.instrument.instruments import instruments_for
from otel_model_health.instrument.transport import instrument_client
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome

from .harness import (
    Bar,
    Panel,
    Providers,
    Results,
    Scale,
    Target,
    Workload,
    interleave,
    median,
    paired_diff,
    paired_ratio,
    us,
)

MODEL: Final = "gpt-4o-mini"
CHAT_BODY: Final = json.dumps(
    {"model": MODEL, "messages": [{"role": "user", "content": "Say hello in five words."}]}
).encode()
STREAM_BODY: Final = json.dumps(
    {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "Count to two hundred."}]}
).encode()
HEADERS: Final = {"content-type": "application/json", "authorization": "Bearer sk-bench-not-a-key"}
STREAM_CHUNKS: Final = 200

_INSTRUMENTORS: Final[dict[str, Any]] = {"httpx": HTTPXClientInstrumentor, "httpx2": HTTPX2ClientInstrumentor}


def _module(name: str) -> Any:
    return importlib.import_module(name)


def _ours(client: Any, providers: Providers, registry: HealthRegistry) -> Any:
    return instrument_client(
        client,
        registry=registry,
        tracer_provider=providers.tracer_provider,
        meter_provider=providers.meter_provider,
    )


def _otel(client: Any, module_name: str, tracer_provider: Any, meter_provider: Any) -> Any:
    _INSTRUMENTORS[module_name].instrument_client(
        client, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    return client


def _calls(client: Any, url: str) -> Workload:
    post = client.post

    def run(n: int) -> None:
        for _ in range(n):
            response = post(url, content=CHAT_BODY, headers=HEADERS)
            if response.status_code != 200:
                raise RuntimeError(f"benchmark call failed: {response.status_code}")

    return run


def _sdk_floor(
    client: Any, url: str, providers: Providers, registry: HealthRegistry, host: str, port: int
) -> Workload:
    """A bare call followed by the OpenTelemetry SDK and registry calls our transport makes for it, made
    directly: minus the bare call, what recording the same data costs with no code of ours around it.
    Made around real calls, not in a tight loop, so caches and the CPU are in the same state as for
    the transport."""
    inst = instruments_for(
        registry=registry, tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider
    )
    key = ModelKey(provider="openai", model=MODEL, gateway="127.0.0.1")
    start_attributes: dict[str, AttributeValue] = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
        semconv.GEN_AI_PROVIDER_NAME: key.provider,
        semconv.GEN_AI_REQUEST_MODEL: MODEL,
        semconv.MH_OPERATION: semconv.OPERATION_INFERENCE,
        semconv.MH_GATEWAY: key.gateway,
        semconv.SERVER_ADDRESS: host,
        semconv.SERVER_PORT: port,
        semconv.GEN_AI_REQUEST_STREAM: False,
    }
    end_attributes: dict[str, AttributeValue] = {
        semconv.MH_OUTCOME: "success",
        semconv.GEN_AI_RESPONSE_MODEL: MODEL,
        semconv.GEN_AI_RESPONSE_ID: "chatcmpl-1",
        semconv.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 12,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 6,
        semconv.HTTP_RESPONSE_STATUS_CODE: 200,
    }
    metric_attributes: dict[str, AttributeValue] = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
        semconv.GEN_AI_PROVIDER_NAME: key.provider,
        semconv.GEN_AI_REQUEST_MODEL: MODEL,
        semconv.MH_GATEWAY: key.gateway,
        semconv.GEN_AI_RESPONSE_MODEL: MODEL,
        semconv.SERVER_ADDRESS: host,
        semconv.SERVER_PORT: port,
    }

    post = client.post

    def run(n: int) -> None:
        for _ in range(n):
            post(url, content=CHAT_BODY, headers=HEADERS)
            span = inst.tracer.start_span(f"chat {MODEL}", kind=SpanKind.CLIENT, attributes=start_attributes)
            span.set_attributes(end_attributes)
            span.end()
            inst.duration.record(0.1, metric_attributes)
            tokens = dict(metric_attributes)
            tokens[semconv.GEN_AI_TOKEN_TYPE] = semconv.TOKEN_TYPE_INPUT
            inst.tokens.record(12, tokens)
            tokens[semconv.GEN_AI_TOKEN_TYPE] = semconv.TOKEN_TYPE_OUTPUT
            inst.tokens.record(6, tokens)
            registry.record(
                key, Outcome.SUCCESS, latency_s=0.1, status_code=200, span_context=span.get_span_context()
            )

    return run


def _what_is_recorded(module_name: str, url: str) -> dict[str, tuple[int, int, int]]:
    """Per call, for ours and otel-httpx: (spans, span attributes, metric data points)."""
    out: dict[str, tuple[int, int, int]] = {}
    module = _module(module_name)
    for variant in ("ours", "otel-httpx"):
        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[reader])
        with module.Client() as client:
            if variant == "ours":
                instrument_client(
                    client,
                    registry=HealthRegistry(),
                    tracer_provider=tracer_provider,
                    meter_provider=meter_provider,
                )
            else:
                _otel(client, module_name, tracer_provider, meter_provider)
            client.post(url, content=CHAT_BODY, headers=HEADERS)
        spans = exporter.get_finished_spans()
        points = 0
        data = reader.get_metrics_data()
        if data is not None:
            for resource_metrics in data.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        points += len(list(metric.data.data_points))
        out[variant] = (len(spans), sum(len(s.attributes or {}) for s in spans), points)
        tracer_provider.shutdown()
        meter_provider.shutdown()
    return out


def bench_transport(base_url: str, scale: Scale, providers: Providers) -> Results:
    """Section 1: a non-streaming chat completion, client CPU per call."""
    results = Results()
    url = f"{base_url}/v1/chat/completions"
    bars: list[Bar] = []
    for module_name in ("httpx2", "httpx"):
        module = _module(module_name)
        registry = HealthRegistry()
        bare = module.Client()
        ours = _ours(module.Client(), providers, registry)
        otel = _otel(module.Client(), module_name, providers.tracer_provider, providers.meter_provider)
        variants = {"bare": _calls(bare, url), "ours": _calls(ours, url), "otel": _calls(otel, url)}
        parsed = urlsplit(base_url)
        floor_client = module.Client()
        variants["floor"] = _sdk_floor(
            floor_client, url, providers, registry, parsed.hostname or "", parsed.port or 80
        )
        try:
            samples = interleave(
                variants,
                n=scale.n(150),
                rounds=scale.r(25),
            )
        finally:
            for client in (bare, ours, otel, floor_client):
                client.close()
        section = f"1. Transport ({module_name})"
        base = median(samples["bare"])
        added_ours = paired_diff(samples["ours"], samples["bare"])
        added_otel = paired_diff(samples["otel"], samples["bare"])
        ratio = added_ours / added_otel if added_otel > 0 else float("inf")
        results.figure(section, "bare client CPU per call", us(base), "µs")
        results.figure(section, "added CPU per call, ours", us(added_ours), "µs")
        results.figure(section, "added CPU per call, otel-httpx", us(added_otel), "µs")
        results.figure(section, "ratio ours / otel-httpx (added CPU)", ratio, "×")
        floor = paired_diff(samples["floor"], samples["bare"])
        results.figure(
            section,
            "SDK calls for the same data, made directly",
            us(floor),
            "µs",
            f"{floor / added_otel:.2f} × otel-httpx: the lowest ratio reachable while recording all of it"
            if added_otel > 0
            else "",
        )
        recorded = _what_is_recorded(module_name, url)
        for variant, (spans, attributes, points) in recorded.items():
            extra = " + 1 registry.record" if variant == "ours" else ""
            results.figure(
                section,
                f"recorded per call, {variant}",
                attributes,
                "span attributes",
                f"{spans} span(s), {points} metric point(s){extra}",
            )
        ours_attrs, otel_attrs = recorded["ours"][1], recorded["otel-httpx"][1]
        bars += [
            Bar(f"{module_name}: ours", us(added_ours)),
            Bar(f"{module_name}: otel-httpx", us(added_otel), baseline=True),
            Bar(f"{module_name}: SDK floor", us(floor), baseline=True),
        ]
        if module_name == "httpx2":
            workload = _profile_calls(module, providers, url, scale.n(600))
            results.targets.append(
                Target(
                    "Transport added CPU ≤ 0.5 × otel-httpx (httpx2), recording more",
                    f"{ratio:.2f}× ({us(added_ours):.0f} vs {us(added_otel):.0f} µs; "
                    f"{ours_attrs} vs {otel_attrs} span attributes)",
                    "≤ 0.50×",
                    ratio <= 0.5 and ours_attrs > otel_attrs,
                    workload,
                )
            )
        else:
            results.targets.append(
                Target(
                    "Transport added CPU ≤ 0.5 × otel-httpx (httpx)",
                    f"{ratio:.2f}× ({us(added_ours):.0f} vs {us(added_otel):.0f} µs)",
                    "≤ 0.50×",
                    ratio <= 0.5,
                    _profile_calls(module, providers, url, scale.n(600)),
                )
            )
    results.panels.append(Panel("1. Transport: added client CPU per chat completion", "µs", tuple(bars)))
    return results


def _profile_calls(module: Any, providers: Providers, url: str, n: int) -> Callable[[], object]:
    def workload() -> None:
        with module.Client() as client:
            _calls(_ours(client, providers, HealthRegistry()), url)(n)

    return workload


# --- section 2: streams ----------------------------------------------------------------------------
def _stream_once(client: Any, url: str, headers: dict[str, str]) -> tuple[float, float, int]:
    """(seconds to the first chunk, seconds to the end, chunks read) of one streamed completion."""
    t0 = time.perf_counter()
    first = -1.0
    reads = 0
    with client.stream("POST", url, content=STREAM_BODY, headers=headers) as response:
        for _chunk in response.iter_bytes():
            if reads == 0:
                first = time.perf_counter() - t0
            reads += 1
    return first, time.perf_counter() - t0, reads


def _replaying_client(module: Any, chunks: list[bytes], headers: dict[str, str]) -> Any:
    """A client whose every request gets the recorded stream back, chunk for chunk, from memory."""

    class Replay(module.SyncByteStream):  # type: ignore[misc]
        def __iter__(self) -> Any:
            return iter(chunks)

    def handler(request: Any) -> Any:
        return module.Response(200, headers=headers, stream=Replay())

    return module.Client(transport=module.MockTransport(handler))


def _first_chunk_in_process(
    module: Any, url: str, headers: dict[str, str], providers: Providers, pairs: int
) -> float:
    """Added first-chunk latency with the network and the server taken out: the same recorded stream
    replayed from memory to a bare and an instrumented client, alternately; median of the differences."""
    with module.Client() as recorder, recorder.stream("POST", url, content=STREAM_BODY, headers=headers) as r:
        chunks = list(r.iter_raw())
        recorded = {"content-type": r.headers.get("content-type", "text/event-stream")}
    bare = _replaying_client(module, chunks, recorded)
    ours = _ours(_replaying_client(module, chunks, recorded), providers, HealthRegistry())
    differences = []
    try:
        for _ in range(pairs):
            bare_first = _stream_once(bare, url, headers)[0]
            differences.append(_stream_once(ours, url, headers)[0] - bare_first)
    finally:
        bare.close()
        ours.close()
    return median(differences)


def bench_streams(base_url: str, scale: Scale, providers: Providers) -> Results:
    results = Results()
    module = _module("httpx2")
    url = f"{base_url}/v1/chat/completions"
    headers = {**HEADERS, "x-simulated-chunks": str(STREAM_CHUNKS)}
    bare = module.Client()
    ours = _ours(module.Client(), providers, HealthRegistry())
    first: dict[str, list[float]] = {"bare": [], "ours": []}

    def streams(client: Any, name: str) -> Workload:
        def run(n: int) -> None:
            for _ in range(n):
                latency, _total, _reads = _stream_once(client, url, headers)
                first[name].append(latency)

        return run

    n = scale.n(12)
    rounds = scale.r(25)
    try:
        variants = {"bare": streams(bare, "bare"), "ours": streams(ours, "ours")}
        for run in variants.values():
            run(2)  # warm-up
        cpu = interleave(variants, n=n, rounds=rounds, warmup=False)
        # First-chunk latency is taken stream by stream, alternating: in blocks of consecutive streams the
        # server's own time to headers drifts with what the client did just before (measured: +0.5 ms
        # to headers after a block of instrumented streams, with no-op providers too), which is not
        # latency the instrumentation adds between the bytes and the caller.
        first["bare"].clear()
        first["ours"].clear()
        for _ in range(n * rounds):
            for run in variants.values():
                run(1)
        # No buffering: with 20 ms between chunks, the first chunk must reach the caller long before the
        # last, in as many reads as without instrumentation.
        slow = {**HEADERS, "x-simulated-chunks": "10", "x-simulated-chunk-delay": "0.02"}
        slow_bare = _stream_once(bare, url, slow)
        slow_ours = _stream_once(ours, url, slow)
    finally:
        bare.close()
        ours.close()

    def per_round(values: list[float]) -> list[float]:
        return [median(values[i * n : (i + 1) * n]) for i in range(rounds)]

    first_bare, first_ours = per_round(first["bare"]), per_round(first["ours"])
    added_first = paired_diff(first_ours, first_bare)
    added_cpu = paired_diff(cpu["ours"], cpu["bare"])
    section = f"2. Streaming ({STREAM_CHUNKS}-chunk SSE, httpx2)"
    results.figure(section, "first chunk, bare (wall)", us(median(first_bare)), "µs")
    results.figure(section, "added latency to first chunk, ours (wall)", us(added_first), "µs")
    results.figure(
        section,
        "added latency to first chunk, in process",
        us(_first_chunk_in_process(module, url, headers, providers, scale.n(400))),
        "µs",
        "the recorded stream replayed from memory: our code alone, no network, no server",
    )
    results.figure(section, "bare client CPU per stream", us(median(cpu["bare"])), "µs")
    results.figure(section, "added CPU per stream, ours", us(added_cpu), "µs")
    results.figure(section, "added CPU per chunk event, ours", us(added_cpu) / STREAM_CHUNKS, "µs")
    buffered = not (slow_ours[0] < 0.3 * slow_ours[1] and slow_ours[2] >= slow_bare[2] - 1)
    results.figure(
        section,
        "slow stream (10 × 20 ms): first chunk / total, ours",
        1000 * slow_ours[0],
        "ms",
        f"total {1000 * slow_ours[1]:.0f} ms, {slow_ours[2]} reads (bare: {1000 * slow_bare[0]:.0f} ms, "
        f"{slow_bare[2]} reads)",
    )
    results.panels.append(
        Panel(
            f"2. Streaming: added CPU per {STREAM_CHUNKS}-chunk stream",
            "µs",
            (Bar("ours", us(added_cpu)),),
        )
    )

    def workload() -> None:
        with module.Client() as client:
            wrapped = _ours(client, providers, HealthRegistry())
            for _ in range(scale.n(60)):
                _stream_once(wrapped, url, headers)

    results.targets.append(
        Target(
            "Streaming: ≤ 50 µs added to first-chunk latency; no buffering",
            f"{us(added_first):.0f} µs; {'BUFFERED' if buffered else 'not buffered'}",
            "≤ 50 µs",
            added_first <= 50e-6 and not buffered,
            workload,
        )
    )
    return results


# --- section 6: concurrency --------------------------------------------------------------------------
def _threaded(client: Any, url: str, threads: int) -> Workload:
    def run(n: int) -> None:
        per_thread = max(1, n // threads)
        workers = [threading.Thread(target=_calls(client, url), args=(per_thread,)) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    return run


async def _async_rounds(
    module: Any, url: str, providers: Providers, tasks: int, n: int, rounds: int
) -> dict[str, list[float]]:
    limits = module.Limits(max_connections=100, max_keepalive_connections=100)
    bare = module.AsyncClient(limits=limits)
    ours = _ours(module.AsyncClient(limits=limits), providers, HealthRegistry())
    per_task = max(1, n // tasks)

    async def one_task(client: Any) -> None:
        for _ in range(per_task):
            response = await client.post(url, content=CHAT_BODY, headers=HEADERS)
            if response.status_code != 200:
                raise RuntimeError(f"benchmark call failed: {response.status_code}")

    async def burst(client: Any) -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(one_task(client) for _ in range(tasks)))
        return (time.perf_counter() - t0) / (per_task * tasks)

    samples: dict[str, list[float]] = {"bare": [], "ours": []}
    try:
        await burst(bare)  # warm-up: opens the pools' connections
        await burst(ours)
        for r in range(rounds):
            for name in ("bare", "ours") if r % 2 == 0 else ("ours", "bare"):
                samples[name].append(await burst(bare if name == "bare" else ours))
    finally:
        await bare.aclose()
        await ours.aclose()
    return samples


def bench_concurrency(base_url: str, scale: Scale, providers: Providers) -> Results:
    results = Results()
    module = _module("httpx2")
    url = f"{base_url}/v1/chat/completions"
    bare = module.Client()
    ours = _ours(module.Client(), providers, HealthRegistry())
    try:
        threaded = interleave(
            {"bare": _threaded(bare, url, 2), "ours": _threaded(ours, url, 2)},
            n=scale.n(300),
            rounds=scale.r(9),
            clock=time.perf_counter,
        )
    finally:
        bare.close()
        ours.close()
    tasks = 200
    in_tasks = asyncio.run(
        _async_rounds(module, url, providers, tasks, max(tasks, scale.n(1000)), scale.r(9))
    )
    section = "6. Concurrency (httpx2, wall-clock throughput)"
    bars: list[Bar] = []
    for label, samples in (("2 threads", threaded), (f"{tasks} asyncio tasks", in_tasks)):
        # per-call wall time → throughput; ratio of the same round's throughputs
        ratio = paired_ratio(samples["bare"], samples["ours"])
        results.figure(section, f"{label}: bare throughput", 1 / median(samples["bare"]), "calls/s")
        results.figure(section, f"{label}: ours throughput", 1 / median(samples["ours"]), "calls/s")
        results.figure(section, f"{label}: ratio ours / bare", ratio, "×")
        bars.append(Bar(label, ratio))
        is_threads = label == "2 threads"

        def workload(is_threads: bool = is_threads) -> None:
            if is_threads:
                # cProfile sees only the thread it runs in: profile the same calls on this thread.
                with module.Client() as client:
                    _calls(_ours(client, providers, HealthRegistry()), url)(scale.n(600))
            else:
                asyncio.run(_async_rounds(module, url, providers, tasks, max(tasks, scale.n(1000)), 1))

        results.targets.append(
            Target(
                f"Concurrency, {label}: throughput ≥ 0.85 × bare",
                f"{ratio:.2f}×",
                "≥ 0.85×",
                ratio >= 0.85,
                workload,
            )
        )
    results.panels.append(Panel("6. Concurrency: throughput ours / bare", "×", tuple(bars)))
    return results
