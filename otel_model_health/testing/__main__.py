"""``python -m otel_model_health.testing --port 8099 --scenario flaky``: serve until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from otel_model_health.testing.scenarios import SCENARIOS, resolve_scenario
from otel_model_health.testing.server import SimulatedProvider


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m otel_model_health.testing",
        description="Run the simulated LLM provider (OpenAI, Anthropic, Azure, Gemini wire formats).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: 0, an ephemeral port)")
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        help=f"fault scenario: a name ({', '.join(SCENARIOS)}), a JSON file, or inline JSON; repeatable",
    )
    parser.add_argument("--models", help="comma-separated model ids; any other model gets a 404")
    parser.add_argument("--chunks", type=int, default=5, help="content chunks per stream (default: 5)")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds before each chunk")
    parser.add_argument("--gzip", action="store_true", help="gzip JSON answers when the client accepts it")
    parser.add_argument("--seed", type=int, default=0, help="seed of probabilistic faults")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rules = [rule for spec in args.scenario for rule in resolve_scenario(spec)]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    provider = SimulatedProvider(
        args.host,
        args.port,
        models=args.models.split(",") if args.models else None,
        stream_chunks=args.chunks,
        chunk_delay=args.chunk_delay,
        gzip=args.gzip,
        seed=args.seed,
    )
    provider.plan.extend(rules)
    stop_requested = threading.Event()
    # SIGTERM stops as cleanly as Ctrl-C (only the main thread may install handlers).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    with provider:
        print(f"simulated provider on {provider.base_url}", flush=True)
        print(f"  OpenAI:    {provider.openai_base_url}", flush=True)
        print(f"  Anthropic: {provider.anthropic_base_url}", flush=True)
        print(f"  rules:     {len(rules)}", flush=True)
        try:
            while not stop_requested.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
