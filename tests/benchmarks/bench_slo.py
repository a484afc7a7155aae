"""Section 9, in process: what SLOs cost. Bytes per key with SLOs on at the key cap, and the record()
cost they add (interleaved with a registry without SLOs, and one whose SLO matches no key)."""

from __future__ import annotations

from typing import Final

from otel_model_health import HealthRegistry
from otel_model_health.health.types import CallResult
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.slo import SLO

from .bench_calls import MODEL, _empty_loop, _record_result_loop, bytes_per_key
from .harness import Results, Scale, Target, interleave, paired_diff, us

AVAILABILITY: Final = SLO("chat-availability", objective=0.999)
LATENCY: Final = SLO("chat-latency", sli="latency", objective=0.99, latency_threshold_s=8.0)
NO_MATCH: Final = SLO("other", match={"provider": "no-such-provider"})


def bench_slo(scale: Scale) -> Results:
    results = Results()
    section = "9. SLOs"
    base, _ = bytes_per_key()
    one, _ = bytes_per_key(slos=[AVAILABILITY])
    two, _ = bytes_per_key(slos=[AVAILABILITY, LATENCY])
    results.figure(section, "memory per ModelKey at the cap, no SLO", base, "bytes", "tracemalloc")
    results.figure(section, "memory per ModelKey, 1 SLO", one, "bytes", f"+{one - base:,.0f} for its history")
    results.figure(
        section, "memory per ModelKey, 2 SLOs", two, "bytes", f"+{two - base:,.0f} for their history"
    )
    key = ModelKey(provider="openai", model=MODEL)
    ok = CallResult(Outcome.SUCCESS, latency_s=0.25)
    bad = CallResult(Outcome.FAILURE, error_type="503", status_code=503, latency_s=0.25)
    variants = {
        "empty": _empty_loop,
        "no SLO": _record_result_loop(HealthRegistry(), key, ok),
        "SLO matching no key": _record_result_loop(HealthRegistry(slos=[NO_MATCH]), key, ok),
        "1 SLO (availability)": _record_result_loop(HealthRegistry(slos=[AVAILABILITY]), key, ok),
        "2 SLOs (availability, latency)": _record_result_loop(
            HealthRegistry(slos=[AVAILABILITY, LATENCY]), key, ok
        ),
        "failure, no SLO": _record_result_loop(HealthRegistry(), key, bad),
        "failure, 1 SLO": _record_result_loop(HealthRegistry(slos=[AVAILABILITY]), key, bad),
    }
    samples = interleave(variants, n=scale.n(20000), rounds=scale.r(11))
    cost = {
        name: paired_diff(values, samples["empty"]) for name, values in samples.items() if name != "empty"
    }
    for name, value in cost.items():
        results.figure(
            section, f"record_result success, {name}" if "failure" not in name else name, us(value), "µs/call"
        )
    added = {
        name: paired_diff(samples[name], samples[baseline])
        for name, baseline in (
            ("SLO matching no key", "no SLO"),
            ("1 SLO (availability)", "no SLO"),
            ("2 SLOs (availability, latency)", "no SLO"),
            ("failure, 1 SLO", "failure, no SLO"),
        )
    }
    for name, value in added.items():
        results.figure(section, f"added by {name}", us(value), "µs/call", "paired, same rounds")
    results.targets.append(
        Target("≤ 8 KB per key with SLOs on (2 SLOs)", f"{two:,.0f} bytes", "≤ 8,192 bytes", two <= 8192)
    )
    one_slo = added["1 SLO (availability)"]
    results.targets.append(
        Target("≤ +0.3 µs per record() with an SLO", f"{us(one_slo):+.2f} µs", "≤ +0.3 µs", one_slo <= 0.3e-6)
    )
    return results
