"""A worker process of the fleet tests: what one uvicorn/gunicorn worker of a gateway holds. A registry
on the shared Redis, a Sentry bridge with an in-memory transport, and an OpenAI client instrumented by
our transport, calling the simulated provider. The test drives it over a pipe, one command at a time."""

from __future__ import annotations

import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

MESSAGES: Any = [{"role": "user", "content": "hi"}]


def main(
    conn: Connection,
    redis_url: str,
    prefix: str,
    base_url: str,
    config: dict[str, Any],
    options: dict[str, Any] | None = None,
) -> None:
    """``options``: ``max_keys``, ``slo_snapshot_s`` and ``slos`` (SLO keyword dicts, alerts as [severity,
    rate, long, short]) of this worker's registry."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sentry"))
    import httpx2
    import openai
    from bugsink_server import capturing_sentry
    from opentelemetry.sdk.trace import TracerProvider

    from otel_model_health.health.fleet import RedisStore
    from otel_model_health.health.registry import HealthRegistry
    from otel_model_health.health.types import BreakerConfig
    from otel_model_health.instrument.transport import ModelHealthTransport
    from otel_model_health.sentry import SentryBridge
    from otel_model_health.slo import SLO, BurnRateAlert

    seen: list[tuple[str, bool]] = []

    with capturing_sentry() as sentry:
        options = options or {}
        slos = [
            SLO(**{**d, "alerts": tuple(BurnRateAlert(*a) for a in d["alerts"])})
            for d in options.get("slos", ())
        ]
        registry = HealthRegistry(
            config=BreakerConfig(**config),
            store=RedisStore(redis_url, prefix=prefix, slo_snapshot_s=options.get("slo_snapshot_s", 60.0)),
            max_keys=options.get("max_keys", 500),
            slos=slos,
        )
        bridge = SentryBridge().attach(registry)

        # Provider and SLO transitions the listeners received: (kind, remote)
        def note(t: Any) -> None:
            if t.provider or t.slo_alert:
                seen.append((t.kind.value, t.remote))

        registry.subscribe(note)
        transport = ModelHealthTransport(
            httpx2.HTTPTransport(), registry=registry, tracer_provider=TracerProvider()
        )
        client = openai.OpenAI(
            base_url=base_url,
            api_key="sk-test",
            max_retries=0,
            http_client=httpx2.Client(transport=transport),
        )

        def call(model: str) -> dict[str, Any]:
            permit = registry.try_acquire(provider="openai", model=model, gateway="self_hosted")
            if permit is None:
                return {"called": False}
            trial = permit.tracked
            try:
                client.chat.completions.create(model=model, messages=MESSAGES)
                ok = True
            except openai.APIStatusError:
                ok = False
            return {"called": True, "ok": ok, "trial": trial}

        def batch(model: str, count: int, pause_s: float) -> dict[str, int]:
            totals = {"called": 0, "failed": 0, "refused": 0}
            for _ in range(count):
                result = call(model)
                totals["called"] += result["called"]
                totals["refused"] += not result["called"]
                totals["failed"] += result["called"] and not result["ok"]
                if pause_s:
                    time.sleep(pause_s)
            return totals

        conn.send("ready")
        while True:
            command, *args = conn.recv()
            try:
                if command == "stop":
                    registry.close(2.0)
                    bridge.close()
                    conn.send(None)
                    return
                if command == "seen":
                    conn.send(seen)
                    continue
                conn.send(_answer(command, args, registry, bridge, sentry, call, batch))
            except Exception as exc:  # the test sees it: a worker must never raise into a caller
                conn.send({"error": f"{type(exc).__name__}: {exc}"})


def _answer(
    command: str, args: list[Any], registry: Any, bridge: Any, sentry: Any, call: Any, batch: Any
) -> Any:
    from otel_model_health.keys import ModelKey
    from otel_model_health.outcomes import Outcome

    if command == "call":
        return call(*args)
    if command == "batch":
        return batch(*args)
    if command == "available":
        return registry.is_available(provider="openai", model=args[0], gateway="self_hosted")
    if command == "state":
        state = registry.get(provider="openai", model=args[0], gateway="self_hosted")
        return None if state is None else state.breaker_state.value
    if command == "summary":
        summary = registry.summary()
        summary.pop("checked_at", None)
        return summary
    if command == "events":
        bridge.flush(2.0)
        return [(e["tags"].get("transition"), e["tags"].get("model_id")) for e in sentry.events]
    if command == "record":  # registry.record itself: outcomes exactly as the test scripts them
        model, outcome, count = args
        key = ModelKey(provider="openai", model=model, gateway="self_hosted")
        for _ in range(count):
            registry.record(key, Outcome(outcome), latency_s=0.1)
        return None
    if command == "slo":  # (good, bad) of each SLO series of the model over its period
        return [(s.good, s.bad) for s in registry.slo_statuses() if s.key.model == args[0]]
    if command == "store":
        fleet = registry.fleet
        return {**fleet.stats(), "connected": fleet.connected}
    raise ValueError(f"unknown command {command!r}")
