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


def main(conn: Connection, redis_url: str, prefix: str, base_url: str, config: dict[str, Any]) -> None:
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

    with capturing_sentry() as sentry:
        registry = HealthRegistry(config=BreakerConfig(**config), store=RedisStore(redis_url, prefix=prefix))
        bridge = SentryBridge().attach(registry)
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
                conn.send(_answer(command, args, registry, bridge, sentry, call, batch))
            except Exception as exc:  # the test sees it: a worker must never raise into a caller
                conn.send({"error": f"{type(exc).__name__}: {exc}"})


def _answer(
    command: str, args: list[Any], registry: Any, bridge: Any, sentry: Any, call: Any, batch: Any
) -> Any:
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
    if command == "store":
        fleet = registry.fleet
        return {**fleet.stats(), "connected": fleet.connected}
    raise ValueError(f"unknown command {command!r}")
