"""Sections 3, 4 and 5, in process: the decorator against hand-written instruments, the cost of one
health record against an SDK span, pybreaker and purgatory, and the registry at its key cap."""

from __future__ import annotations

import contextlib
import gc
import tracemalloc
from collections.abc import Callable
from timeit import default_timer
from typing import Any, Final

import purgatory
import pybreaker
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_model_health import HealthRegistry, ModelHealthSpanProcessor, monitor, semconv
from otel_model_health.health.metrics import register_health_metrics
from otel_model_health.health.types import CallResult
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
    us,
)

MODEL: Final = "gpt-4o-mini"
ERROR_MESSAGE: Final = "InternalServerError: Error code: 503 - upstream connect error"


# --- section 3: decorator ------------------------------------------------------------------------------
def _noop(model: str, messages: object = None) -> object:
    return None


def _hand_written(providers: Providers, registry: HealthRegistry) -> Callable[..., object]:
    """What a careful user would write by hand: the same span, attributes, metric and registry.record."""
    tracer = providers.tracer_provider.get_tracer("bench.hand")
    meter = providers.meter_provider.get_meter("bench.hand")
    duration = meter.create_histogram(
        semconv.METRIC_OPERATION_DURATION,
        unit="s",
        explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS),
    )
    key = ModelKey(provider="openai", model=MODEL)

    def call(model: str, messages: object = None) -> object:
        attributes = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
            semconv.GEN_AI_PROVIDER_NAME: key.provider,
            semconv.GEN_AI_REQUEST_MODEL: model,
            semconv.MH_OPERATION: semconv.OPERATION_INFERENCE,
            semconv.MH_GATEWAY: key.gateway,
        }
        span = tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes)
        started_at = registry.now()
        t0 = default_timer()
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            result = _noop(model, messages)
        finally:
            otel_context.detach(token)
        latency = default_timer() - t0
        span.set_attribute(semconv.MH_OUTCOME, Outcome.SUCCESS.value)
        span.end()
        duration.record(
            latency,
            {
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
                semconv.GEN_AI_PROVIDER_NAME: key.provider,
                semconv.GEN_AI_REQUEST_MODEL: model,
                semconv.MH_GATEWAY: key.gateway,
            },
        )
        registry.record(
            key,
            Outcome.SUCCESS,
            latency_s=latency,
            started_at=started_at,
            span_context=span.get_span_context(),
        )
        return result

    return call


def _loop(func: Callable[..., object]) -> Workload:
    def run(n: int) -> None:
        for _ in range(n):
            func(MODEL, None)

    return run


def bench_decorator(scale: Scale, providers: Providers) -> Results:
    results = Results()
    monitored = monitor(
        provider="openai",
        registry=HealthRegistry(),
        tracer_provider=providers.tracer_provider,
        meter_provider=providers.meter_provider,
    )(_noop)
    hand = _hand_written(providers, HealthRegistry())
    samples = interleave(
        {"bare": _loop(_noop), "monitor": _loop(monitored), "hand": _loop(hand)},
        n=scale.n(4000),
        rounds=scale.r(15),
    )
    added_ours = paired_diff(samples["monitor"], samples["bare"])
    added_hand = paired_diff(samples["hand"], samples["bare"])
    ratio = added_ours / added_hand if added_hand > 0 else float("inf")
    section = "3. Decorator on a no-op"
    results.figure(section, "bare call", us(median(samples["bare"])), "µs")
    results.figure(section, "added per call, @monitor", us(added_ours), "µs")
    results.figure(section, "added per call, hand-written instruments", us(added_hand), "µs")
    results.figure(section, "ratio @monitor / hand-written", ratio, "×")
    results.panels.append(
        Panel(
            "3. Decorator: added CPU per call",
            "µs",
            (Bar("@monitor", us(added_ours)), Bar("hand-written", us(added_hand), baseline=True)),
        )
    )
    results.targets.append(
        Target(
            "Decorator ≤ 1.1 × hand-written instruments",
            f"{ratio:.2f}× ({us(added_ours):.1f} vs {us(added_hand):.1f} µs)",
            "≤ 1.10×",
            ratio <= 1.1,
            lambda: _loop(monitored)(scale.n(20000)),
        )
    )
    return results


# --- section 4: one health record ----------------------------------------------------------------------
def _finished_span(attributes: dict[str, Any], *, error: bool) -> ReadableSpan:
    """A finished GenAI span of 'another instrumentation' (its own provider, no processors)."""
    tracer = TracerProvider().get_tracer("foreign.genai")
    parent = tracer.start_span("gateway request")
    with trace.use_span(parent, end_on_exit=True):
        span = tracer.start_span(f"chat {attributes[semconv.GEN_AI_REQUEST_MODEL]}", attributes=attributes)
        if error:
            span.set_status(Status(StatusCode.ERROR, "Error code: 503"))
        span.end()
    assert isinstance(span, ReadableSpan)
    return span


def _record_loop(registry: HealthRegistry, key: ModelKey, outcome: Outcome, **kwargs: Any) -> Workload:
    record = registry.record

    def run(n: int) -> None:
        for _ in range(n):
            record(key, outcome, latency_s=0.25, **kwargs)

    return run


def _record_result_loop(registry: HealthRegistry, key: ModelKey, result: CallResult) -> Workload:
    record_result = registry.record_result

    def run(n: int) -> None:
        for _ in range(n):
            record_result(key, result)

    return run


def _on_end_loop(processor: ModelHealthSpanProcessor, span: ReadableSpan) -> Workload:
    on_end = processor.on_end

    def run(n: int) -> None:
        for _ in range(n):
            on_end(span)

    return run


def _sdk_span_loop(providers: Providers) -> Workload:
    start_span = providers.tracer_provider.get_tracer("bench.bare").start_span

    def run(n: int) -> None:
        for _ in range(n):
            start_span("chat").end()

    return run


def _empty_loop(n: int) -> None:
    for _ in range(n):
        _noop(MODEL)


class _Boom(Exception):
    pass


def _fail(model: str) -> None:
    raise _Boom(model)


def _pybreaker_loop(fail: bool) -> Workload:
    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
    call = breaker.call
    func = _fail if fail else _noop

    def run(n: int) -> None:
        for _ in range(n):
            with contextlib.suppress(Exception):  # the call's error, or CircuitBreakerError once open
                call(func, MODEL)

    return run


def _purgatory_loop(fail: bool) -> Workload:
    factory = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)
    func = factory("bench-model")(_fail if fail else _noop)

    def run(n: int) -> None:
        for _ in range(n):
            with contextlib.suppress(Exception):  # the call's error, or purgatory's OpenedState once open
                func(MODEL)

    return run


def _raising_loop(n: int) -> None:
    for _ in range(n):
        with contextlib.suppress(Exception):
            _fail(MODEL)


def _metrics_are_observable() -> tuple[bool, str]:
    """Which instrument kinds ``register_health_metrics`` creates: all observable means nothing per call."""
    created: list[str] = []
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench.check")

    class Spy:
        def __getattr__(self, name: str) -> Any:
            if name.startswith("create_"):
                created.append(name)
            return getattr(meter, name)

    register_health_metrics(HealthRegistry(), Spy())  # type: ignore[arg-type]
    kinds = sorted(set(created))
    return bool(created) and all(k.startswith("create_observable_") for k in created), ", ".join(kinds)


def bench_health(scale: Scale, providers: Providers) -> Results:
    results = Results()
    section = "4. Health record"
    registry = HealthRegistry()
    ok_key = ModelKey(provider="openai", model=MODEL)
    bad_key = ModelKey(provider="openai", model="gpt-4o")
    limited_key = ModelKey(provider="openai", model="o3")
    with_metrics = HealthRegistry()
    metrics_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    register_health_metrics(with_metrics, metrics_provider.get_meter("bench.health"))
    processor = ModelHealthSpanProcessor(HealthRegistry())
    ok_span = _finished_span(
        {
            semconv.GEN_AI_OPERATION_NAME: "chat",
            semconv.GEN_AI_PROVIDER_NAME: "openai",
            semconv.GEN_AI_REQUEST_MODEL: MODEL,
            semconv.HTTP_RESPONSE_STATUS_CODE: 200,
        },
        error=False,
    )
    bad_span = _finished_span(
        {
            semconv.GEN_AI_OPERATION_NAME: "chat",
            semconv.GEN_AI_PROVIDER_NAME: "openai",
            semconv.GEN_AI_REQUEST_MODEL: "gpt-4o",
            semconv.ERROR_TYPE: "InternalServerError",
        },
        error=True,
    )
    variants: dict[str, Workload] = {
        "empty": _empty_loop,
        "raising": _raising_loop,
        "record success": _record_loop(registry, ok_key, Outcome.SUCCESS),
        # What the instrumentation calls: the CallResult is built once per call by the measurement.
        "record_result success": _record_result_loop(
            registry, ok_key, CallResult(Outcome.SUCCESS, latency_s=0.25)
        ),
        "record failure": _record_loop(
            registry,
            bad_key,
            Outcome.FAILURE,
            error_type="503",
            status_code=503,
            error_message=ERROR_MESSAGE,
        ),
        "record rate_limited": _record_loop(
            registry, limited_key, Outcome.RATE_LIMITED, error_type="429", status_code=429, retry_after_s=1.0
        ),
        "record success, health metrics registered": _record_loop(with_metrics, ok_key, Outcome.SUCCESS),
        "on_end success": _on_end_loop(processor, ok_span),
        "on_end failure": _on_end_loop(processor, bad_span),
        "bare SDK span": _sdk_span_loop(providers),
        "pybreaker success": _pybreaker_loop(fail=False),
        "pybreaker failure": _pybreaker_loop(fail=True),
        "purgatory success": _purgatory_loop(fail=False),
        "purgatory failure": _purgatory_loop(fail=True),
    }
    samples = interleave(variants, n=scale.n(20000), rounds=scale.r(11))
    empty, raising = samples["empty"], samples["raising"]
    cost: dict[str, float] = {}
    for name, values in samples.items():
        if name in ("empty", "raising"):
            continue
        # Breakers wrap a call: their cost is over the bare call (a raising one on the failure path).
        baseline = raising if name.endswith("failure") and name.startswith(("py", "purg")) else empty
        cost[name] = paired_diff(values, baseline)
        results.figure(section, f"{name}", us(cost[name]), "µs/call")
    metrics_extra = cost["record success, health metrics registered"] - cost["record success"]
    observable, kinds = _metrics_are_observable()
    results.figure(section, "model_health.* instruments created", len(kinds.split(", ")), "kinds", kinds)
    results.panels.append(
        Panel(
            "4. Health record: CPU per call",
            "µs",
            tuple(
                Bar(name, us(cost[name]), baseline=name.startswith(("bare", "pybreaker", "purgatory")))
                for name in (
                    "record success",
                    "record failure",
                    "on_end success",
                    "on_end failure",
                    "bare SDK span",
                    "pybreaker success",
                    "pybreaker failure",
                    "purgatory success",
                    "purgatory failure",
                )
            ),
        )
    )
    n_profile = scale.n(100000)
    for name in ("record success", "record failure", "on_end success", "on_end failure"):
        workload = variants[name]
        results.targets.append(
            Target(
                f"Health {name} ≤ 2 µs per call (median)",
                f"{us(cost[name]):.2f} µs",
                "≤ 2 µs",
                cost[name] <= 2e-6,
                lambda workload=workload: workload(n_profile),  # type: ignore[misc]
            )
        )
    results.targets.append(
        Target(
            "Nothing per call for model_health.* metrics (observable)",
            f"{kinds}; record with metrics registered {us(metrics_extra):+.2f} µs",
            "observable only",
            observable,
        )
    )
    return results


# --- section 5: scale ---------------------------------------------------------------------------------
def _fill(registry: HealthRegistry, keys: list[ModelKey], *, failure: bool = True) -> None:
    """A full window per key (20 outcomes, one of them a failure with a message), as at steady state.
    Without ``failure``, successes only: every key then takes the same (fast) path afterwards."""
    for key in keys:
        for i in range(20):
            if failure and i == 10:
                registry.record(
                    key, Outcome.FAILURE, error_type="503", status_code=503, error_message=ERROR_MESSAGE
                )
            else:
                registry.record(key, Outcome.SUCCESS, latency_s=0.25)


def _keys(count: int, offset: int = 0) -> list[ModelKey]:
    return [
        ModelKey(provider=("openai", "anthropic", "groq")[i % 3], model=f"model-{offset + i:04d}-instruct")
        for i in range(count)
    ]


def bytes_per_key(cap: int = 500, **registry_options: Any) -> tuple[float, float]:
    """(bytes per key at the cap, bytes per key after another cap's worth of keys evicted the first)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        registry = HealthRegistry(max_keys=cap, **registry_options)
        _fill(registry, _keys(cap))
        gc.collect()
        at_cap = tracemalloc.get_traced_memory()[0] - before
        _fill(registry, _keys(cap, offset=cap))
        gc.collect()
        after_churn = tracemalloc.get_traced_memory()[0] - before
        assert len(registry.model_keys()) == cap
    finally:
        tracemalloc.stop()
    return at_cap / cap, after_churn / cap


def bench_scale(scale: Scale) -> Results:
    results = Results()
    section = "5. Scale (500-key cap)"
    per_key, per_key_churn = bytes_per_key()
    results.figure(section, "memory per ModelKey at the cap", per_key, "bytes", "tracemalloc, full windows")
    results.figure(section, "memory per ModelKey after evicting 500 keys", per_key_churn, "bytes")

    def cycling(count: int) -> Workload:
        registry = HealthRegistry(max_keys=500)
        keys = _keys(count)
        _fill(registry, keys, failure=False)
        n = scale.n(20000)
        sequence = [keys[i % count] for i in range(n)]
        record = registry.record

        def run(m: int) -> None:
            for key in sequence[:m] if m < n else sequence:
                record(key, Outcome.SUCCESS, latency_s=0.25)

        return run

    n = scale.n(20000)
    samples = interleave({"5": cycling(5), "500": cycling(500)}, n=n, rounds=scale.r(11))
    ratio = median([b / a for a, b in zip(samples["5"], samples["500"], strict=True)])
    results.figure(section, "record, 5 keys", us(median(samples["5"])), "µs/call")
    results.figure(section, "record, 500 keys", us(median(samples["500"])), "µs/call")
    results.figure(section, "ratio 500 keys / 5 keys", ratio, "×")
    results.targets.append(
        Target("≤ 2 KB per ModelKey at the cap", f"{per_key:,.0f} bytes", "≤ 2,048 bytes", per_key <= 2048)
    )
    results.targets.append(
        Target(
            "Record cost flat from 5 to 500 keys",
            f"{ratio:.2f}×",
            "≤ 1.20×",
            ratio <= 1.2,
            lambda: cycling(500)(scale.n(100000)),
        )
    )
    return results
