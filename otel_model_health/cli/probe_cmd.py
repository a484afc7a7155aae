"""``otel-model-health probe``: health-check models on any OpenAI-compatible or Anthropic endpoint.

The built-in probes (a 1-token chat completion or message; ``--mode models`` lists models instead) run
under a ``HealthMonitor`` feeding a registry, exactly as in an app; the table shows the registry.
``configure()`` is called as an app would, so ``OTEL_EXPORTER_OTLP_*`` exports the probe spans and
metrics, and ``SENTRY_ENABLED`` + ``SENTRY_DSN`` report incidents.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Final
from urllib.parse import urlsplit

from .. import semconv
from ..hosts import HostResolver, provider_from_model
from ..keys import ModelKey
from ..settings import ConfigurationError
from .arguments import positive_seconds
from .display import Display, use_live_output
from .incidents import IncidentLog
from .table import Row, render_table, row_from_state
from .text import usage_error

EXIT_OK: Final = 0
EXIT_UNHEALTHY: Final = 1
EXIT_INTERRUPTED: Final = 130
_ONCE_GRACE_S: Final = 3.0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="probe models on an OpenAI-compatible or Anthropic endpoint",
        description=(
            "Send each model a 1-token request (or list the endpoint's models) and show its health. "
            "With --once: probe once, exit 0 if every model is healthy, else 1."
        ),
    )
    parser.add_argument(
        "--base-url",
        required=True,
        metavar="URL",
        help="API base URL: https://api.openai.com/v1 style for OpenAI-compatible APIs (with /v1), "
        "https://api.anthropic.com for Anthropic (without /v1)",
    )
    parser.add_argument(
        "--model", action="append", required=True, dest="models", metavar="M", help="model id; repeatable"
    )
    parser.add_argument(
        "--provider", help="gen_ai.provider.name for the models (default: from the URL's host, else the API)"
    )
    parser.add_argument(
        "--api",
        choices=("openai", "anthropic"),
        help="wire format (default: anthropic when the provider is anthropic, else openai)",
    )
    parser.add_argument("--gateway", help="gateway name for the model key (default: from the host)")
    parser.add_argument("--api-key", help="API key (default: OPENAI_API_KEY or ANTHROPIC_API_KEY, by --api)")
    parser.add_argument(
        "--mode",
        choices=("chat", "models"),
        default="chat",
        help="openai API only: 'chat' sends max_tokens=1 (default); 'models' checks GET /models",
    )
    parser.add_argument(
        "--interval", type=positive_seconds, default=30.0, metavar="S", help="seconds between runs"
    )
    parser.add_argument(
        "--timeout", type=positive_seconds, default=10.0, metavar="S", help="seconds per probe run"
    )
    parser.add_argument("--once", action="store_true", help="probe each model once and exit 0/1")
    parser.add_argument(
        "--duration",
        type=positive_seconds,
        metavar="S",
        help="without --once: stop after S seconds (default: Ctrl-C)",
    )
    parser.add_argument("--plain", action="store_true", help="plain lines, no live table (default off a TTY)")
    parser.set_defaults(run=run_probe)


def check_base_url(url: str) -> str | None:
    """The reason ``url`` is not a usable base URL, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"--base-url {url!r} is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"--base-url must be an http(s) URL such as https://api.openai.com/v1, got {url!r}"
    if parts.query or parts.fragment:
        return f"--base-url must not have a query or fragment, got {url!r}"
    return None


def _keys(args: argparse.Namespace, host: str) -> tuple[str, list[ModelKey]]:
    """The API to speak and the model keys, from the options and the host table."""
    route = HostResolver().resolve(host)
    gateway = args.gateway or route.gateway or host
    keys = []
    api = args.api
    for model in args.models:
        provider = args.provider or route.provider
        if provider is None and route.provider_from_model:
            provider = provider_from_model(model)
        if provider is None:
            provider = api or semconv.PROVIDER_OPENAI
        keys.append(ModelKey(provider=provider, model=model, gateway=gateway))
    if api is None:
        providers = {k.provider for k in keys}
        api = "anthropic" if providers == {semconv.PROVIDER_ANTHROPIC} else "openai"
    return api, keys


def run_probe(args: argparse.Namespace) -> int:
    problem = check_base_url(args.base_url)
    if problem is not None:
        return usage_error("probe", problem)
    if any(not m.strip() for m in args.models):
        return usage_error("probe", "--model must not be empty")
    if args.api_key is not None and not (args.api_key.isascii() and args.api_key.isprintable()):
        # Never quoted: it is a secret. A header cannot carry it, so every probe would fail.
        return usage_error("probe", "--api-key must be printable ASCII")
    if args.mode == "models" and args.api == "anthropic":
        return usage_error("probe", "--mode models is only available with the openai API")
    if args.once and args.duration is not None:
        return usage_error("probe", "--once and --duration exclude each other")
    api, keys = _keys(args, urlsplit(args.base_url).hostname or "")

    from ..configure import configure

    try:
        # OTEL_SERVICE_NAME wins; without it the probe names itself (an option would beat the variable).
        handle = configure(service_name=os.environ.get("OTEL_SERVICE_NAME") or "otel-model-health-probe")
    except (ConfigurationError, ImportError) as exc:
        return usage_error("probe", str(exc))
    try:
        return _run(args, api, keys, handle)
    finally:
        handle.shutdown()


def _run(args: argparse.Namespace, api: str, keys: list[ModelKey], handle: Any) -> int:
    from ..probes import AnthropicProbe, HealthMonitor, OpenAIProbe

    registry = handle.registry
    monitor = HealthMonitor(
        registry=registry, interval_s=args.interval, jitter=0.0, timeout_s=args.timeout, select="always"
    )
    for key in keys:
        if api == "anthropic":
            probe: Any = AnthropicProbe(
                key.model,
                base_url=args.base_url,
                api_key=args.api_key,
                provider=key.provider,
                gateway=key.gateway,
            )
        else:
            probe = OpenAIProbe(
                key.model,
                mode=args.mode,
                base_url=args.base_url,
                api_key=args.api_key,
                provider=key.provider,
                gateway=key.gateway,
            )
        monitor.add(probe)
    display = Display(live=not args.once and use_live_output(sys.stdout, plain=args.plain))
    start = time.monotonic()
    log = IncidentLog(t0_wall=time.time(), emit=display.log)
    unsubscribe = registry.subscribe(log) if not args.once else (lambda: None)
    interrupted = False
    try:
        monitor.start()
        if args.once:
            _wait_for_outcomes(registry, keys, args.timeout + _ONCE_GRACE_S)
        else:
            while args.duration is None or time.monotonic() - start < args.duration:
                display.refresh(_rows(registry, keys), _header(args, time.monotonic() - start))
                time.sleep(0.5)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        monitor.stop()
        unsubscribe()
    rows = _rows(registry, keys)
    if args.once:
        for line in render_table(rows):
            display.print(line)
    else:
        display.refresh(rows, _header(args, time.monotonic() - start), force_table=True)
        display.finish()
    healthy = sum(r.healthy for r in rows)
    display.print(f"{healthy} of {len(rows)} models healthy")
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if rows and healthy == len(rows) else EXIT_UNHEALTHY


def _header(args: argparse.Namespace, elapsed: float) -> str:
    return f"probing {args.base_url} every {args.interval:g} s — {elapsed:.0f} s — Ctrl-C to stop"


def _wait_for_outcomes(registry: Any, keys: list[ModelKey], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = [registry.get(provider=k.provider, model=k.model, gateway=k.gateway) for k in keys]
        if all(s is not None and s.last_outcome is not None for s in states):
            return
        time.sleep(0.05)


def _rows(registry: Any, keys: list[ModelKey]) -> list[Row]:
    rows = []
    for key in keys:
        state = registry.get(provider=key.provider, model=key.model, gateway=key.gateway)
        if state is None:
            rows.append(
                Row(
                    key.model,
                    key.provider,
                    key.gateway,
                    "unknown",
                    None,
                    0,
                    "closed",
                    None,
                    None,
                    "no answer yet",
                )
            )
        else:
            rows.append(row_from_state(state))
    return rows
