"""``otel-model-health demo``: a scripted series of model incidents on the simulated provider, watched live.

Order of things: load the scenario (a usage error exits 2 before anything starts), start the simulated
provider, ``configure()`` telemetry, subscribe the incident log, start traffic and probes, then the main
thread installs each phase's fault rules on time and redraws the table. Teardown stops, in order, the
traffic threads, the probe monitor, the provider, the SDK clients and the telemetry, joining every thread.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from ..outcomes import Outcome
from ..settings import ConfigurationError
from ..slo.status import status_json
from .arguments import positive_seconds
from .display import Display, use_live_output
from .incidents import IncidentLog, model_label, summarize
from .scenario import Phase, Scenario, ScenarioError, load_scenario
from .slo_table import render_slo_table
from .table import overall_line, row_from_state
from .text import usage_error

TICK_S: Final = 0.25
EXIT_INTERRUPTED: Final = 130


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run scripted model incidents on a simulated provider and watch health live",
        description=(
            "Start a simulated OpenAI/Anthropic provider on 127.0.0.1, drive traffic through the real "
            "openai and anthropic SDKs, make models fail on a schedule, and show health, breaker "
            "transitions and Sentry events as they happen. Ends with an incident summary."
        ),
    )
    parser.add_argument(
        "--scenario", metavar="FILE", help="scenario JSON file (default: the built-in one; see docs)"
    )
    parser.add_argument(
        "--duration", type=positive_seconds, metavar="S", help="seconds to run (default: the scenario's)"
    )
    parser.add_argument(
        "--telemetry-file",
        metavar="PATH",
        help="where to write spans and metrics as JSON lines when no OTLP endpoint is set "
        "(default: a file in the temp directory)",
    )
    parser.add_argument("--plain", action="store_true", help="plain lines, no live table (default off a TTY)")
    parser.add_argument(
        "--ui-port",
        type=int,
        default=0,
        metavar="PORT",
        help="serve the status page (/health/ui) on 127.0.0.1:PORT while the demo runs (default: a free "
        "port; -1: no page)",
    )
    parser.set_defaults(run=run_demo)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the demo like Ctrl-C: teardown and summary (only the main thread may do this)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        return usage_error("demo", exc)
    duration = args.duration if args.duration is not None else scenario.duration_s
    display = Display(live=use_live_output(sys.stdout, plain=args.plain))
    with _sigterm_as_interrupt():
        return _Demo(scenario, duration, display, args.telemetry_file, args.ui_port).run()


class _Demo:
    def __init__(
        self,
        scenario: Scenario,
        duration: float,
        display: Display,
        telemetry_file: str | None,
        ui_port: int = -1,
    ):
        self.scenario = scenario
        self.ui_port = ui_port
        self.duration = duration
        self.display = display
        self.telemetry_file = telemetry_file
        self.stop = threading.Event()
        self.sentry_events = 0
        self.t0_wall = time.time()
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def _on_sentry_event(self, event: dict[str, Any]) -> None:
        self.sentry_events += 1
        t = time.time() - self.t0_wall
        tags = event.get("tags") or {}
        self.display.log(
            f"t+{t:5.1f}s  sentry [{event.get('level')}] {event.get('message')}"
            f"  (tags transition={tags.get('transition')} error_type={tags.get('error_type')})"
        )

    def run(self) -> int:
        from ..testing import SimulatedProvider
        from .telemetry import setup_telemetry
        from .traffic import ClientPool, TrafficWorker

        scenario, display = self.scenario, self.display
        provider = SimulatedProvider(seed=scenario.seed)
        provider.start()
        try:
            telemetry = setup_telemetry(
                breaker=scenario.breaker,
                slos=scenario.slos,
                telemetry_file=self.telemetry_file,
                on_sentry_event=self._on_sentry_event,
            )
        except (ConfigurationError, ImportError, OSError) as exc:
            provider.stop()
            return usage_error("demo", exc)
        registry = telemetry.handle.registry
        page = self._status_page(telemetry)
        self._intro(provider.base_url, telemetry.where, telemetry.sentry)
        if page is not None:
            display.print(f"Status page: {page.url}  (live while the demo runs)")
            display.print()

        self.t0_wall, self.t0 = time.time(), time.monotonic()
        log = IncidentLog(t0_wall=self.t0_wall, emit=display.log)
        unsubscribe = registry.subscribe(log)
        pool = ClientPool(openai_base_url=provider.openai_base_url, anthropic_base_url=provider.base_url)
        workers = []
        active = [m for m in scenario.models if m.calls_per_s > 0]
        for i, spec in enumerate(active):
            offset = (i / len(active)) / spec.calls_per_s  # spread the models' calls over a period
            workers.append(TrafficWorker(spec, pool.caller(spec), self.stop, offset_s=offset))
        monitor = self._probe_monitor(registry, provider)
        interrupted = False
        try:
            for worker in workers:
                worker.thread.start()
            monitor.start()
            self._loop(provider, registry)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            end = self.elapsed()
            self.stop.set()
            for worker in workers:
                worker.thread.join(10)
            monitor.stop()
            final_rows = [row_from_state(s) for s in registry.snapshot()]
            final_summary = registry.summary()
            final_slos = [status_json(s) for s in registry.slo_statuses()]
            provider.stop()
            pool.close()
            display.refresh(final_rows, self._header(end), force_table=True)
            display.finish()
            unsubscribe()
            if page is not None:
                page.stop()
            telemetry.shutdown()

        display.print()
        display.print(("Interrupted" if interrupted else "Finished") + f" after {end:.1f} s.")
        display.print(overall_line(final_summary))
        display.print()
        display.print("Incidents")
        for line in summarize(log.incidents, scenario.fault_windows):
            display.print("  " + line)
        self._rate_limits(registry)
        if final_slos:
            display.print()
            display.print("SLOs (budget left, burn rate per window, alerts active at the end)")
            for line in render_slo_table(final_slos):
                display.print("  " + line)
        calls = sum(w.calls for w in workers)
        errors = sum(w.errors for w in workers)
        stats = monitor.stats
        display.print()
        display.print(
            f"Traffic: {calls} SDK calls ({errors} raised an error to the caller); "
            f"probes: {stats.runs} runs, {stats.skipped} skipped (model had fresh traffic)"
        )
        display.print(f"Telemetry: {telemetry.describe_output()}")
        if telemetry.sentry.startswith("Sentry: no SENTRY_DSN"):
            display.print(f"Sentry: {self.sentry_events} events printed above (set SENTRY_DSN to send them)")
        else:
            display.print(telemetry.sentry)
        return EXIT_INTERRUPTED if interrupted else 0

    def _status_page(self, telemetry: Any) -> Any:
        """The status page on 127.0.0.1, linked to the demo's Sentry events; None with ``--ui-port -1``."""
        if self.ui_port < 0:
            return None
        from ..asgi import health_asgi_app
        from .page_server import PageServer

        handle = telemetry.handle
        app = health_asgi_app(
            handle.registry,
            sentry=telemetry.sentry_bridge,
            trace_url_template=handle.settings.trace_url_template,
        )
        return PageServer(app, self.ui_port).start()

    def _probe_monitor(self, registry: Any, provider: Any) -> Any:
        from ..probes import AnthropicProbe, HealthMonitor, OpenAIProbe
        from .traffic import API_KEY

        monitor = HealthMonitor(
            registry=registry,
            interval_s=self.scenario.probe_interval_s,
            timeout_s=3.0,
            trial_interval_s=0.5,
            select="due",
        )
        for spec in self.scenario.models:
            if not spec.probe:
                continue
            anthropic = spec.api == "anthropic"
            probe_class = AnthropicProbe if anthropic else OpenAIProbe
            base_url = provider.base_url if anthropic else provider.openai_base_url
            monitor.add(
                probe_class(
                    spec.model,
                    base_url=base_url,
                    api_key=API_KEY,
                    provider=spec.provider,
                    gateway=spec.gateway,
                )
            )
        return monitor

    def _loop(self, provider: Any, registry: Any) -> None:
        pending = list(self.scenario.phases)
        running: list[Phase] = []
        while True:
            now = self.elapsed()
            if now >= self.duration:
                return
            # Ends first, so "fault over" comes before the phase that takes over from it.
            for phase in [p for p in running if p.until <= now]:
                running.remove(phase)
                self._log_phase(phase, started=False)
            while pending and pending[0].at <= now:
                phase = pending.pop(0)
                if phase.fault is not None:
                    provider.plan.extend(phase.rules())
                    running.append(phase)
                self._log_phase(phase, started=True)
            rows = [row_from_state(s) for s in registry.snapshot()]
            self.display.refresh(rows, self._header(now))
            time.sleep(min(TICK_S, max(0.0, self.duration - self.elapsed())))

    def _log_phase(self, phase: Phase, *, started: bool) -> None:
        t = phase.at if started else phase.until
        target = phase.target
        if started:
            text = f"scenario: {target} → {phase.describe()}"
            if phase.note:
                text += f" — {phase.note}"
        else:
            text = f"scenario: {target} fault over ({phase.state} ended)"
        self.display.log(f"t+{t:5.1f}s  {text}")

    def _header(self, now: float) -> str:
        wait = self.scenario.breaker.open_wait_s
        return (
            f"t+{now:5.1f}s of {self.duration:g}s — scenario {self.scenario.name} — "
            f"breaker OPEN wait {wait:g} s (demo setting; library default 30 s)"
        )

    def _intro(self, base_url: str, telemetry: str, sentry: str) -> None:
        s, p = self.scenario, self.display.print
        b = s.breaker
        p(f"otel-model-health demo — scenario {s.name!r} ({s.source}), {self.duration:g} s")
        if s.description:
            p(f"  {s.description}")
        p(f"  simulated provider: {base_url} (OpenAI and Anthropic wire formats, faults scripted below)")
        p("  traffic (real SDK calls):")
        for m in s.models:
            how = (
                "@monitor around the openai SDK"
                if m.client == "monitor"
                else f"{m.api} SDK + instrument_client"
            )
            p(f"    {model_label(m.key):<56} {m.calls_per_s:g}/s via {how}")
        p(
            f"  probes: HealthMonitor every {s.probe_interval_s:g} s for models without fresh traffic, "
            "and right after an OPEN wait (as trials)"
        )
        p(
            f"  breaker: opens after {b.consecutive_failures} failures in a row or "
            f">= {b.failure_rate_threshold:.0%} failed of >= {b.minimum_calls} calls; OPEN waits "
            f"{b.open_wait_s:g} s here (library default 30 s), doubling on each re-open; "
            f"{b.half_open_trials} good trial calls close it"
        )
        p(f"  telemetry: {telemetry}")
        p(f"  {sentry}")
        p("  schedule:")
        for phase in s.phases:
            if phase.at < self.duration:
                p(f"    t+{phase.at:5.1f}s  {phase.target:<40} {phase.describe()}")
            else:
                p(f"    (skipped, after --duration) t+{phase.at:.1f}s {phase.target}: {phase.describe()}")
        p()

    def _rate_limits(self, registry: Any) -> None:
        limited = []
        for state in registry.snapshot():
            n = sum(
                v for (_op, outcome), v in state.outcome_totals.items() if outcome is Outcome.RATE_LIMITED
            )
            if n:
                limited.append((state, n))
        if not limited:
            return
        self.display.print()
        self.display.print(
            "Rate limits (429 is not a failure: no incident, no Sentry event; the model is "
            "'degraded' until Retry-After)"
        )
        for state, n in limited:
            self.display.print(f"  {model_label(state.key)}: {n} rate-limited calls")
