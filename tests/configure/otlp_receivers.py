"""Real OTLP receivers on 127.0.0.1 for the configure() tests, and a runner for child processes.

- ``oteltap`` (http/protobuf): embedded in this process. Its receiver is asyncio-based, so it runs on a
  private event loop in a thread; everything it receives (spans, metrics: protobuf messages, without
  resources) is collected into lists the tests wait on.
- ``rotel`` (gRPC): the collector binary shipped in the ``rotel`` package, run as a child process with an
  OTLP gRPC receiver, the blackhole exporter and its debug log ("detailed"), which prints resources,
  spans and metrics to stdout; stdout goes to a file the tests read.

Both fail loudly when they cannot start. configure() runs in child processes (``run_child``) because
OpenTelemetry global providers can be set only once per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 15.0
WAIT_TIMEOUT_S = 20.0


def free_port() -> int:
    """An ephemeral port that was free a moment ago (the receivers need the number before binding)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, deadline: float, alive: Callable[[], bool]) -> bool:
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        time.sleep(0.05)
    return False


# --- oteltap ------------------------------------------------------------------------------------------


class OtelTap:
    """An embedded oteltap http/protobuf receiver collecting every span and metric it gets."""

    def __init__(self) -> None:
        self.port = 0
        self.spans: list[Any] = []  # opentelemetry.proto.trace.v1.trace_pb2.Span
        self.metrics: list[Any] = []  # opentelemetry.proto.metrics.v1.metrics_pb2.Metric
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="oteltap-loop", daemon=True)
        self._receiver: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OtelTap:
        self._thread.start()
        errors = []
        for _ in range(3):  # the port is picked before binding: retry if another process took it
            self.port = free_port()
            try:
                self._run(self._start(), START_TIMEOUT_S)
            except Exception as exc:
                errors.append(repr(exc))
                continue
            if _wait_port(self.port, time.monotonic() + START_TIMEOUT_S, lambda: True):
                return self
            errors.append(f"port {self.port} not accepting connections")
        self.stop()
        raise RuntimeError(f"oteltap receiver could not start: {errors}")

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._run(self._stop(), START_TIMEOUT_S)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT_S)
        self._loop.close()

    def _run(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        from oteltap import OtelTapHttpProtobufReceiver, OtelTapHttpProtobufReceiverSettings

        receiver = OtelTapHttpProtobufReceiver(OtelTapHttpProtobufReceiverSettings(http_port=self.port))
        await receiver.start()
        self._receiver = receiver
        self._tasks = [
            asyncio.create_task(self._collect(receiver.stream_traces(), self.spans)),
            asyncio.create_task(self._collect(receiver.stream_metrics(), self.metrics)),
        ]
        await asyncio.sleep(0)  # let the collectors subscribe before anything can arrive

    async def _stop(self) -> None:
        if self._receiver is not None:
            await self._receiver.stop()  # closes the channels: the collectors end
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _collect(self, stream: AsyncIterator[Any], into: list[Any]) -> None:
        async for message in stream:
            with self._cond:
                into.append(message)
                self._cond.notify_all()

    def wait_for(
        self, what: Callable[[OtelTap], T | None], timeout: float = WAIT_TIMEOUT_S, describe: str = ""
    ) -> T:
        """Wait until ``what(self)`` returns something truthy; fail with what was received otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = what(self)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = sorted({m.name for m in self.metrics})
                    spans = sorted({s.name for s in self.spans})
                    raise AssertionError(
                        f"oteltap: timed out waiting for {describe or what}; spans={spans} metrics={names}"
                    )
                self._cond.wait(min(remaining, 0.5))


# Fixture functions carry a different name than the fixture, so test modules can import them
# (`from otlp_receivers import oteltap_fixture`) without shadowing the argument name.
@pytest.fixture(scope="module", name="oteltap")
def oteltap_fixture() -> Iterator[OtelTap]:
    tap = OtelTap().start()
    try:
        yield tap
    finally:
        tap.stop()


# --- rotel --------------------------------------------------------------------------------------------


def rotel_binary() -> Path:
    import rotel

    path = Path(rotel.__file__).parent / "rotel-agent"
    if not path.exists():
        raise RuntimeError(f"rotel package has no collector binary at {path}")
    return path


class Rotel:
    """The rotel collector with an OTLP gRPC receiver; its debug log lands in ``output_path``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.output_path = workdir / "rotel.out"
        self.grpc_port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    def start(self) -> Rotel:
        errors = []
        for _ in range(3):
            self.grpc_port, http_port = free_port(), free_port()
            args = [
                str(rotel_binary()),
                "start",
                "--otlp-grpc-endpoint", f"127.0.0.1:{self.grpc_port}",
                "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
                "--exporter", "blackhole",
                "--debug-log", "traces",
                "--debug-log", "metrics",
                "--debug-log-verbosity", "detailed",
                "--batch-timeout", "50ms",
                "--pid-file", str(self.workdir / "rotel.pid"),
                "--log-file", str(self.workdir / "rotel.log"),
            ]  # fmt: skip
            env = {k: v for k, v in os.environ.items() if not k.startswith(("ROTEL_", "OTEL_"))}
            env["NO_COLOR"] = "1"
            with self.output_path.open("wb") as out:
                self._process = subprocess.Popen(
                    args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
                )
            process = self._process
            if _wait_port(
                self.grpc_port, time.monotonic() + START_TIMEOUT_S, lambda p=process: p.poll() is None
            ):
                return self
            errors.append(f"exit={process.poll()} output={self.output()[-2000:]!r}")
            self.stop()
        raise RuntimeError(f"rotel collector could not start: {errors}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def output(self) -> str:
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def wait_for(
        self, predicate: Callable[[str], bool], timeout: float = WAIT_TIMEOUT_S, describe: str = ""
    ) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.output()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"rotel: timed out waiting for {describe}; output tail:\n{text[-4000:]}")
            if self._process is None or self._process.poll() is not None:
                raise AssertionError(f"rotel exited while waiting for {describe}; output:\n{text[-4000:]}")
            time.sleep(0.1)


@pytest.fixture(scope="module", name="rotel_collector")
def rotel_collector_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rotel]:
    collector = Rotel(tmp_path_factory.mktemp("rotel")).start()
    try:
        yield collector
    finally:
        collector.stop()


# --- child processes --------------------------------------------------------------------------------


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without OTEL_* / SENTRY_* (so the host cannot leak in), plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SENTRY_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_child(code: str, env: Mapping[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter; fail with its output if it does not exit 0."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"child exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


# --- reading OTLP protobuf messages -------------------------------------------------------------------


def attributes(message: Any) -> dict[str, Any]:
    """``KeyValue`` list of a span or data point → a plain dict."""
    out: dict[str, Any] = {}
    for kv in message.attributes:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "array_value":
            out[kv.key] = [getattr(v, v.WhichOneof("value")) for v in value.array_value.values]
        else:
            out[kv.key] = getattr(value, kind) if kind else None
    return out


def data_points(metric: Any) -> list[Any]:
    kind = metric.WhichOneof("data")
    return list(getattr(metric, kind).data_points) if kind else []


# A child program producing real GenAI telemetry through configure() only: it measures model calls with
# the instrumentation's CallMeasurement (what the decorators and the transport drive), then shuts down.
# Format with model=..., calls=..., failures=..., configure_args=...
CHILD_CALLS = """
import otel_model_health as omh
from otel_model_health.instrument.instruments import instruments_for
from otel_model_health.instrument.measurement import start_call
from otel_model_health.keys import ModelKey

handle = omh.configure({configure_args})
inst = instruments_for()
key = ModelKey(provider="openai", model={model!r}, gateway="test-gw")
for status in [200] * {calls} + [503] * {failures}:
    call = start_call(inst, key=key, operation_name="chat", server_address="127.0.0.1", server_port=8000)
    assert call is not None
    call.response_model = {model!r}
    call.response_id = "resp-1"
    call.finish_reasons = ["stop"]
    call.input_tokens = 11
    call.output_tokens = 7
    call.finish(status_code=status)
state = handle.registry.get(provider="openai", model={model!r}, gateway="test-gw")
print("STATE", state.calls_in_window, state.failures_in_window)
handle.shutdown()
"""
