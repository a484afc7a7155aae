"""Section 8, enforcement (docs/enforcement.md): what a refused call costs, what enforcement adds to a call
it lets through, and the wall time a refusal saves against a call that waits for a hanging provider's
timeout."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, Final

import openai

from otel_model_health import HealthRegistry, ModelKey, ModelUnavailableError, instrument_client, monitor
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import Fault, SimulatedProvider

from . import harness as h
from .bench_calls import _empty_loop

SECTION: Final = "8. Enforcement"
HEALTHY: Final = "gpt-4o-mini"
DOWN: Final = "gpt-4o"
HANG_TIMEOUT_S: Final = 1.0  # the client's timeout in the hanging-provider comparison
MESSAGES: Any = [{"role": "user", "content": "hi"}]


def _noop(model: str) -> None:
    return None


def _decorated(registry: HealthRegistry, providers: h.Providers, *, enforce: bool) -> Callable[[str], None]:
    return monitor(  # type: ignore[no-any-return]
        provider="openai",
        enforce=enforce,
        registry=registry,
        tracer_provider=providers.tracer_provider,
        meter_provider=providers.meter_provider,
    )(_noop)


def _calls(func: Callable[[str], object], model: str) -> h.Workload:
    def run(n: int) -> None:
        for _ in range(n):
            with contextlib.suppress(ModelUnavailableError):
                func(model)

    return run


def _admits(registry: HealthRegistry, key: ModelKey) -> h.Workload:
    admit = registry.admit

    def run(n: int) -> None:
        for _ in range(n):
            admit(key)

    return run


def _sdk_calls(client: openai.OpenAI, model: str) -> h.Workload:
    def run(n: int) -> None:
        for _ in range(n):
            with contextlib.suppress(openai.InternalServerError):
                client.chat.completions.create(model=model, messages=MESSAGES)

    return run


def _client(
    sim: SimulatedProvider, registry: HealthRegistry, providers: h.Providers, **options: Any
) -> openai.OpenAI:
    http_client = instrument_client(
        openai.DefaultHttpxClient(),
        registry=registry,
        tracer_provider=providers.tracer_provider,
        meter_provider=providers.meter_provider,
        enforce=options.pop("enforce"),
    )
    return openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-bench", http_client=http_client, **options)


def bench_enforcement(scale: h.Scale, providers: h.Providers) -> h.Results:
    results = h.Results()
    registry = HealthRegistry()
    for model in (HEALTHY, DOWN):  # both known to the registry, one of them down
        registry.record(ModelKey(provider="openai", model=model), Outcome.SUCCESS)
    registry.force_open(provider="openai", model=DOWN, duration_s=3600.0)
    passive = _decorated(registry, providers, enforce=False)
    enforcing = _decorated(registry, providers, enforce=True)
    cpu = h.interleave(
        {
            "empty": _empty_loop,
            "admit, CLOSED": _admits(registry, ModelKey(provider="openai", model=HEALTHY)),
            "admit, OPEN": _admits(registry, ModelKey(provider="openai", model=DOWN)),
            "@monitor, passive": _calls(passive, HEALTHY),
            "@monitor, enforce, CLOSED": _calls(enforcing, HEALTHY),
            "@monitor, enforce, refused": _calls(enforcing, DOWN),
        },
        n=scale.n(4000),
        rounds=scale.r(11),
    )
    admit_closed = h.paired_diff(cpu["admit, CLOSED"], cpu["empty"])
    admit_open = h.paired_diff(cpu["admit, OPEN"], cpu["empty"])
    added_closed = h.paired_diff(cpu["@monitor, enforce, CLOSED"], cpu["@monitor, passive"])
    refused_decorated = h.paired_diff(cpu["@monitor, enforce, refused"], cpu["empty"])
    passive_call = h.paired_diff(cpu["@monitor, passive"], cpu["empty"])
    results.figure(SECTION, "registry.admit, CLOSED model (lock-free)", h.us(admit_closed), "µs/call")
    results.figure(SECTION, "registry.admit, OPEN model (refusal)", h.us(admit_open), "µs/call")
    results.figure(
        SECTION, "@monitor: enforce on, healthy model, over passive", h.us(added_closed), "µs/call"
    )
    results.figure(
        SECTION, "@monitor: a refused call (span, counter, raise)", h.us(refused_decorated), "µs/call"
    )
    results.figure(SECTION, "@monitor: a measured call, passive (for scale)", h.us(passive_call), "µs/call")

    with SimulatedProvider() as sim:
        sim.script(DOWN, Fault.hang())
        refusing = _client(sim, registry, providers, enforce=True, max_retries=2)
        transport_key = ModelKey(provider="openai", model=DOWN, gateway="self_hosted")
        registry.record(transport_key, Outcome.SUCCESS)
        registry.force_open(provider="openai", model=DOWN, gateway="self_hosted", duration_s=3600.0)
        # The whole SDK call, refused by the transport: wall clock (no I/O is involved, so CPU ~ wall).
        sdk = h.interleave(
            {"refused": _sdk_calls(refusing, DOWN)},
            n=scale.n(400),
            rounds=scale.r(7),
            clock=time.perf_counter,
        )
        refused_sdk = h.median(sdk["refused"])
        waiting = _client(
            sim, HealthRegistry(), providers, enforce=False, max_retries=0, timeout=HANG_TIMEOUT_S
        )
        waits = [_timed_timeout(waiting) for _ in range(scale.r(3))]
        refusing.close()
        waiting.close()
    waited = h.median(waits)
    ratio = waited / refused_sdk if refused_sdk > 0 else float("inf")
    results.figure(
        SECTION,
        "openai SDK call refused by the transport (max_retries=2), wall",
        h.us(refused_sdk),
        "µs/call",
    )
    results.figure(
        SECTION,
        f"openai SDK call to a hanging provider, passive (timeout={HANG_TIMEOUT_S:g} s, max_retries=0), wall",
        waited * 1e3,
        "ms/call",
        "the SDK's default max_retries=2 waits about 3 timeouts plus its backoff sleeps",
    )
    results.figure(SECTION, "wall time saved per call: hanging call / refused call", ratio, "×")
    results.panels.append(
        h.Panel(
            "8. Enforcement: CPU per call",
            "µs",
            (
                h.Bar("admit, CLOSED", h.us(admit_closed)),
                h.Bar("admit, OPEN", h.us(admit_open)),
                h.Bar("@monitor refused", h.us(refused_decorated)),
                h.Bar("@monitor passive call", h.us(passive_call), baseline=True),
                h.Bar("SDK call refused (wall)", h.us(refused_sdk)),
            ),
        )
    )
    results.targets.append(
        h.Target(
            "Enforcement on a healthy model adds ≤ 2 µs per decorated call",
            f"{h.us(added_closed):+.2f} µs",
            "≤ 2 µs",
            added_closed <= 2e-6,
            lambda: _calls(enforcing, HEALTHY)(scale.n(20000)),
        )
    )
    results.targets.append(
        h.Target(
            "A refused SDK call returns ≥ 100× sooner than waiting for a hanging provider",
            f"{ratio:,.0f}× ({h.us(refused_sdk):.0f} µs vs {waited * 1e3:.0f} ms)",
            "≥ 100×",
            ratio >= 100,
        )
    )
    return results


def _timed_timeout(client: openai.OpenAI) -> float:
    started = time.perf_counter()
    with contextlib.suppress(openai.APITimeoutError):
        client.chat.completions.create(model=DOWN, messages=MESSAGES)
    return time.perf_counter() - started
