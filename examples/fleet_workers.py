"""Three worker processes share one verdict per model through Redis (docs/fleet.md).

    MODEL_HEALTH_REDIS_URL=redis://127.0.0.1:6379/0 OPENAI_BASE_URL=http://127.0.0.1:8000/v1 \\
        OPENAI_API_KEY=sk-... OPENAI_MODEL=flaky-model python examples/fleet_workers.py

Each worker is what one uvicorn or gunicorn worker of a gateway would be: ``configure()`` (which reads
``MODEL_HEALTH_REDIS_URL``), an instrumented OpenAI client, and a check of ``is_available()`` before each
call. The workers take turns. When the model fails, the breaker opens after the fleet's failures, not
after five in each worker, and every worker stops calling it.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any

import openai

import otel_model_health as omh
from otel_model_health.instrument.transport import instrument_client

WORKERS = 3
ROUNDS = 6
TURN_S = 0.06  # the workers' calls are this far apart


def available(registry: Any, model: str) -> bool:
    keys = [key for key in registry.model_keys() if key.model == model]
    return all(registry.is_available(provider=k.provider, model=k.model, gateway=k.gateway) for k in keys)


def worker(index: int, model: str, results: Any) -> None:
    handle = omh.configure(service_name="fleet-example", sdk_disabled=True)
    registry = handle.registry
    client = openai.OpenAI(
        max_retries=0, http_client=instrument_client(openai.DefaultHttpxClient(), registry=registry)
    )
    time.sleep(0.5 + index * TURN_S)  # every worker subscribed; then one call every TURN_S in the fleet
    failed = refused = 0
    for _ in range(ROUNDS):
        if not available(registry, model):
            refused += 1  # a gateway would route to another model here
        else:
            try:
                client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
            except openai.APIStatusError:
                failed += 1
        time.sleep(WORKERS * TURN_S)
    time.sleep(0.2)
    results.put((index, failed, refused, available(registry, model)))
    handle.shutdown()


def main() -> None:
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=worker, args=(i, model, results)) for i in range(WORKERS)]
    for process in workers:
        process.start()
    rows = sorted(results.get(timeout=60) for _ in workers)
    for process in workers:
        process.join(10)
    for index, failed, refused, is_available in rows:
        print(f"worker {index}: {failed} failed, {refused} not sent, available={is_available}")
    print(f"failed calls in the fleet: {sum(row[1] for row in rows)}")


if __name__ == "__main__":
    main()
