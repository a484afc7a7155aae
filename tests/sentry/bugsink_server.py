"""Test support for the Sentry bridge tests.

1. ``BugsinkServer``: a real Bugsink (Sentry-compatible server from PyPI) in a temp dir with its own
   config and SQLite databases, served by gunicorn on an ephemeral 127.0.0.1 port. The ``local`` config
   template sets ``SNAPPEA["TASK_ALWAYS_EAGER"] = True``, so ingestion is digested synchronously inside
   the ingest request and events are readable through the REST API as soon as the SDK's send returns.
2. ``CapturingTransport`` and ``make_transition``: a Sentry transport that keeps envelopes in memory and
   a factory of hand-built ``HealthTransition`` objects, shared by the unit tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from otel_model_health.health.types import (
    BreakerState,
    ErrorInfo,
    HealthStatus,
    HealthTransition,
    ModelHealthState,
    TransitionKind,
)
from otel_model_health.keys import ModelKey

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 30.0

# Run once inside Django (one `bugsink-manage shell`, saving interpreter start-ups): both migrations,
# then team, project and API token; print what the tests need.
_BOOTSTRAP = """
import json
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("migrate", database="snappea", verbosity=0)
from bsmain.models import AuthToken
from projects.models import Project
from teams.models import Team
team = Team.objects.create(name="model-health")
project = Project.objects.create(name="model-health", team=team)
print("BOOTSTRAP " + json.dumps({"project_id": project.id, "key": project.sentry_key.hex,
                                 "token": AuthToken.create_full_access().token}))
"""


@dataclass
class BugsinkServer:
    workdir: Path
    process: subprocess.Popen[str]
    port: int
    project_id: int
    token: str
    public_key: str
    log: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dsn(self) -> str:
        return f"http://{self.public_key}@127.0.0.1:{self.port}/{self.project_id}"

    def api(self, path: str, **params: object) -> Any:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        url = f"{self.base_url}/api/canonical/0/{path}" + (f"?{query}" if query else "")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def issues(self) -> list[dict[str, Any]]:
        return list(self.api("issues/", project=self.project_id)["results"])

    def events(self, issue_id: str) -> list[dict[str, Any]]:
        """Events of one issue, oldest first, each with its full ``data`` (the stored event)."""
        listed = self.api("events/", issue=issue_id, order="asc")["results"]
        return [self.api(f"events/{item['id']}/") for item in listed]

    def wait_for_event_count(self, expected: int, timeout: float = 15.0) -> int:
        """Bounded wait for ingestion (normally immediate: digestion is synchronous in this config)."""
        deadline = time.monotonic() + timeout
        count = 0
        while time.monotonic() < deadline:
            count = sum(issue["digested_event_count"] for issue in self.issues())
            if count >= expected:
                return count
            time.sleep(0.1)
        return count


def _manage(workdir: Path, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(BIN / "bugsink-manage"), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bugsink-manage {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@contextmanager
def run_bugsink() -> Iterator[BugsinkServer]:
    """Set up and run a Bugsink; raise (never skip) when it cannot start."""
    workdir = Path(tempfile.mkdtemp(prefix="bugsink-"))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bugsink_conf", "PYTHONPATH": str(workdir)}
    env.pop("SENTRY_DSN", None)
    process: subprocess.Popen[str] | None = None
    try:
        subprocess.run(
            [str(BIN / "bugsink-create-conf"), "--template=local", "--host=127.0.0.1"],
            cwd=workdir, env=env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        out = _manage(workdir, "shell", "-c", _BOOTSTRAP, env=env)
        match = re.search(r"^BOOTSTRAP (.*)$", out, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"Bugsink bootstrap printed no credentials:\n{out}")
        boot = json.loads(match.group(1))
        # gunicorn binds port 0 and logs the port it got; no control socket in $HOME.
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "--bind", "127.0.0.1:0", "--workers", "1", "--threads", "4",
             "--graceful-timeout", "1", "--no-control-socket", "bugsink.wsgi"],
            cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        log: list[str] = []
        port = _read_port(process, log)
        threading.Thread(target=_drain, args=(process, log), daemon=True).start()
        server = BugsinkServer(workdir, process, port, boot["project_id"], boot["token"], boot["key"], log)
        _wait_ready(server)
        yield server
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr is not None:
                process.stderr.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _read_port(process: subprocess.Popen[str], log: list[str]) -> int:
    assert process.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break  # exited
        log.append(line)
        match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
        if match:
            return int(match.group(1))
    raise RuntimeError("Bugsink (gunicorn) did not start:\n" + "".join(log))


def _drain(process: subprocess.Popen[str], log: list[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        log.append(line)


def _wait_ready(server: BugsinkServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            server.issues()
            return
        except Exception as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"Bugsink API not ready: {last!r}\n" + "".join(server.log))


# --- capturing Sentry transport and hand-built transitions ------------------------------------------

TEST_DSN = "http://public@127.0.0.1:1/1"


class CapturingTransport(Transport):
    """Keeps every envelope in memory instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []
        self._lock = threading.Lock()

    def capture_envelope(self, envelope: Envelope) -> None:
        with self._lock:
            self.envelopes.append(envelope)

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            found = [envelope.get_event() for envelope in self.envelopes]
        return [event for event in found if event is not None]

    def flush(self, timeout: float, callback: Any = None) -> None:
        return None

    def kill(self) -> None:
        return None


@contextmanager
def capturing_sentry(**options: Any) -> Iterator[CapturingTransport]:
    """Initialise Sentry with a capturing transport; close the client and restore scopes afterwards.

    Default integrations stay on (logging breadcrumbs, thread scope propagation: what an app has), but
    not the auto-enabling ones: those patch httpx, openai, anthropic ... process-wide and for good,
    which would leak into other tests of the same session.
    """
    transport = CapturingTransport()
    options.setdefault("auto_enabling_integrations", False)
    # Without a release, sentry-sdk runs `git rev-parse HEAD` on every init: a subprocess per test.
    options.setdefault("release", "otel-model-health-tests")
    with sentry_sdk.isolation_scope():
        sentry_sdk.init(dsn=TEST_DSN, transport=transport, **options)
        try:
            yield transport
        finally:
            sentry_sdk.get_client().close()
            sentry_sdk.get_global_scope().set_client(None)


_DEFAULT_STATES: dict[TransitionKind, tuple[BreakerState, BreakerState, HealthStatus, HealthStatus]] = {
    TransitionKind.FIRST_FAILURE: (BreakerState.CLOSED, BreakerState.CLOSED, HealthStatus.HEALTHY,
                                   HealthStatus.DEGRADED),
    TransitionKind.BREAKER_OPENED: (BreakerState.CLOSED, BreakerState.OPEN, HealthStatus.DEGRADED,
                                    HealthStatus.UNHEALTHY),
    TransitionKind.HALF_OPEN: (BreakerState.OPEN, BreakerState.HALF_OPEN, HealthStatus.UNHEALTHY,
                               HealthStatus.DEGRADED),
    TransitionKind.HALF_OPEN_FAILED: (BreakerState.HALF_OPEN, BreakerState.OPEN, HealthStatus.DEGRADED,
                                      HealthStatus.UNHEALTHY),
    TransitionKind.RECOVERED: (BreakerState.HALF_OPEN, BreakerState.CLOSED, HealthStatus.DEGRADED,
                               HealthStatus.HEALTHY),
    TransitionKind.PROVIDER_OUTAGE: (BreakerState.CLOSED, BreakerState.OPEN, HealthStatus.DEGRADED,
                                     HealthStatus.UNHEALTHY),
    TransitionKind.PROVIDER_RECOVERED: (BreakerState.HALF_OPEN, BreakerState.CLOSED, HealthStatus.DEGRADED,
                                        HealthStatus.HEALTHY),
}  # fmt: skip

AT = 1_790_000_000.0  # a fixed wall-clock instant (2026-09-21)


def make_transition(
    kind: TransitionKind,
    *,
    provider: str = "openai",
    model: str = "gpt-4o",
    gateway: str = "openrouter",
    error_type: str | None = "503",
    message: str | None = "Service Unavailable",
    status_code: int | None = 503,
    latency_s: float | None = 0.25,
    trace_id: int | None = 0x0AF7651916CD43DD8448EB211C80319C,
    span_id: int | None = 0x00F067AA0BA902B7,
    sampled: bool | None = True,
    before: BreakerState | None = None,
    after: BreakerState | None = None,
    operation: str = "inference",
    provider_models: tuple[ModelKey, ...] = (),
) -> HealthTransition:
    key = ModelKey(provider=provider, model=model, gateway=gateway)
    d_before, d_after, before_status, after_status = _DEFAULT_STATES[kind]
    before = before or d_before
    after = after or d_after
    error = None
    if error_type is not None or message is not None:
        error = ErrorInfo(error_type, message, status_code, latency_s, AT - 1)
    state = ModelHealthState(
        key=key,
        status=after_status,
        breaker_state=after,
        success_rate=0.4,
        calls_in_window=10,
        failures_in_window=6,
        consecutive_failures=5,
        outcome_totals={},
        breaker_transitions={},
        latency_p50_s=0.2,
        latency_p95_s=0.9,
        last_outcome=None,
        last_outcome_at=AT,
        last_error=error,
        last_failure_at=AT - 1 if error is not None else None,
        open_until=AT + 30 if after is BreakerState.OPEN else None,
        rate_limited_until=None,
        first_seen_at=AT - 3600,
    )
    is_provider = kind in (TransitionKind.PROVIDER_OUTAGE, TransitionKind.PROVIDER_RECOVERED)
    return HealthTransition(
        kind=kind,
        key=key,
        before=before,
        after=after,
        before_status=before_status,
        after_status=after_status,
        state=state,
        operation=operation,
        error=error,
        at=AT,
        trace_id=trace_id,
        span_id=span_id,
        sampled=sampled,
        provider=key.provider if is_provider else None,
        provider_models=provider_models,
    )
