"""Section 10: what the zero-code instrumentor adds to a request that is not a model call.

Under ``opentelemetry-instrument`` every httpx / httpx2 client gets our transport, so every request of the
app (a database's REST API, a health check, an OAuth token fetch) passes through it. Two clients of the
same module, each on an in-memory ``MockTransport`` (no network: its noise would hide a microsecond),
one created before ``autowrap.patch()`` and one after, send ``GET /v1/users/42`` in interleaved rounds;
the figure is the median of the paired differences. The transport's ``handle_request`` is also timed
alone, our wrapper against the mock it wraps, and so is what ``Client()`` itself costs more.
"""

from __future__ import annotations

from typing import Any, Final

from otel_model_health.instrument.transport import autowrap

from .harness import Bar, Panel, Providers, Results, Scale, Target, Workload, interleave, paired_diff, us

URL: Final = "http://api.internal.example/v1/users/42"
LIMIT_US: Final = 2.0


def _client_calls(client: Any) -> Workload:
    def run(n: int) -> None:
        get = client.get
        for _ in range(n):
            get(URL)

    return run


def _transport_calls(transport: Any, request: Any) -> Workload:
    def run(n: int) -> None:
        handle = transport.handle_request
        for _ in range(n):
            handle(request)

    return run


def _mock(module: Any) -> Any:
    """An in-memory transport answering 200 ``{}`` to everything."""
    return module.MockTransport(lambda _request: module.Response(200, content=b"{}"))


def _creations(module: Any) -> Workload:
    def run(n: int) -> None:
        for _ in range(n):
            module.Client(transport=_mock(module)).close()

    return run


def _patched_creations(module: Any) -> Workload:
    """``_creations`` with the client classes patched for the round (patching is not per client)."""

    def run(n: int) -> None:
        autowrap.patch([module.__name__])
        try:
            _creations(module)(n)
        finally:
            autowrap.unpatch()

    return run


def bench_zerocode(scale: Scale, providers: Providers) -> Results:
    import httpx
    import httpx2

    from otel_model_health import defaults

    results = Results()
    section = "10. Zero-code: a request that is not a model call"
    defaults.set_defaults(
        registry=None, tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider
    )
    bars = []
    for module in (httpx2, httpx):
        name = module.__name__
        bare = module.Client(transport=_mock(module))
        autowrap.patch([name])
        try:
            ours = module.Client(transport=_mock(module))
            assert type(ours._transport).__name__ == "ModelHealthTransport"
            request = module.Request("GET", URL)
            samples = interleave(
                {"bare": _client_calls(bare), "ours": _client_calls(ours)},
                n=scale.n(20_000),
                rounds=scale.r(15),
            )
            alone = interleave(
                {
                    "bare": _transport_calls(ours._transport.wrapped, request),
                    "ours": _transport_calls(ours._transport, request),
                },
                n=scale.n(200_000),
                rounds=scale.r(15),
            )
        finally:
            autowrap.unpatch()
        creation = interleave(
            {"bare": _creations(module), "ours": _patched_creations(module)},
            n=scale.n(2_000),
            rounds=scale.r(9),
        )
        added = paired_diff(samples["ours"], samples["bare"])
        bare_us = us(min(samples["bare"]))
        results.figure(section, f"{name}: GET through a bare client", bare_us, "µs")
        results.figure(section, f"{name}: added per request, instrumented client", us(added), "µs")
        results.figure(
            section, f"{name}: ratio instrumented / bare", us(added) / bare_us + 1.0 if bare_us else 0.0, "×"
        )
        results.figure(
            section,
            f"{name}: added by handle_request alone",
            us(paired_diff(alone["ours"], alone["bare"])),
            "µs",
        )
        results.figure(
            section,
            f"{name}: added per Client() created",
            us(paired_diff(creation["ours"], creation["bare"])),
            "µs",
        )
        bars.append(Bar(f"{name} added", us(added)))
        results.targets.append(
            Target(
                f"Zero-code ({name}): ≤ {LIMIT_US:g} µs added to a non-LLM request",
                f"{us(added):.2f} µs (bare GET {bare_us:.1f} µs)",
                f"≤ {LIMIT_US:g} µs",
                us(added) <= LIMIT_US,
                workload=lambda c=ours: _client_calls(c)(scale.n(20_000)),
            )
        )
        bare.close()
        ours.close()
    defaults.set_defaults(registry=None, tracer_provider=None, meter_provider=None)
    results.panels.append(Panel("10. Zero-code: added CPU per non-LLM request", "µs", tuple(bars)))
    return results
