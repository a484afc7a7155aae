"""Serve /health and the status page from a Starlette app (mounted at /ops) and read them back.

Run: .venv/bin/python examples/health_endpoint.py            (queries the app in-process and prints)
     .venv/bin/python examples/health_endpoint.py --serve 8080  (serves on 127.0.0.1:8080 until Ctrl-C;
                                                                 the page: http://127.0.0.1:8080/ops/health/ui)
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from otel_model_health.asgi import health_asgi_app
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome


def build() -> tuple[Starlette, HealthRegistry]:
    registry = HealthRegistry()
    # Some history: gpt-4o fine, claude overloaded five times in a row (its breaker opens).
    for _ in range(10):
        registry.record(ModelKey(provider="openai", model="gpt-4o"), Outcome.SUCCESS, latency_s=0.4)
    for _ in range(5):
        registry.record(
            ModelKey(provider="anthropic", model="claude-haiku-4-5"),
            Outcome.FAILURE,
            error_type="529",
            status_code=529,
        )

    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("my app\n")

    app = Starlette(routes=[Route("/", home), Mount("/ops", app=health_asgi_app(registry))])
    return app, registry


async def show(app: Starlette) -> dict[str, object]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
        summary = await client.get("/ops/health")
        models = await client.get("/ops/health/models", params={"provider": "anthropic"})
        page = await client.get("/ops/health/ui/data")  # what the status page polls
    print("GET /ops/health ->", summary.status_code)
    print(json.dumps(summary.json(), indent=2))
    print("GET /ops/health/models?provider=anthropic ->", models.status_code)
    print(json.dumps(models.json(), indent=2))
    document = page.json()
    print(f"GET /ops/health/ui/data -> {page.status_code} (version {document['version']}, ", end="")
    print(f"{len(document['models'])} models, first: {document['models'][0]['model']})")
    result: dict[str, object] = summary.json()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", type=int, metavar="PORT", help="serve on 127.0.0.1:PORT")
    args = parser.parse_args(argv)
    app, _ = build()
    if args.serve is not None:
        import uvicorn

        uvicorn.run(app, host="127.0.0.1", port=args.serve)
        return 0
    summary = asyncio.run(show(app))
    return 0 if summary["status"] == "degraded" else 1


if __name__ == "__main__":
    raise SystemExit(main())
