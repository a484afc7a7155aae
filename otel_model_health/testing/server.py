"""SimulatedProvider: a loopback HTTP server speaking the OpenAI, Anthropic, Azure and Gemini wire formats,
with faults scripted per model. Standard library only; one thread per connection."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from http.server import ThreadingHTTPServer
from typing import Any, Final, Self

from otel_model_health._context import StartStop
from otel_model_health.testing.faults import (
    ApiName,
    Clock,
    Fault,
    FaultPlan,
    FaultRule,
    rules_from_json,
)
from otel_model_health.testing.handler import Abort, ProviderHandler
from otel_model_health.testing.requestlog import RequestLog, RequestRecord

DEFAULT_MODELS: Final = (
    "gpt-4o",
    "gpt-4o-mini",
    "text-embedding-3-small",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "gemini-2.5-flash",
)
_JOIN_TIMEOUT: Final = 5.0


class _Server(ThreadingHTTPServer):
    """Tracks every connection and its thread, so stop() can close them and join them: no leaks."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], provider: SimulatedProvider, family: socket.AddressFamily):
        self.address_family = family
        self.provider = provider
        self._conn_lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}
        super().__init__(address, ProviderHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._run_connection,
            args=(request, client_address),
            name=f"simulated-provider-conn-{client_address[1]}",
            daemon=True,
        )
        with self._conn_lock:
            self._conns[request] = thread
        thread.start()

    def _run_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._conns.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; a test server should only log.
        self.provider.logger.debug("simulated provider: error on %s", client_address, exc_info=True)

    def close_connections(self) -> list[threading.Thread]:
        with self._conn_lock:
            conns = dict(self._conns)
        for sock in conns:
            # Wakes a thread blocked reading the next keep-alive request; the socket may be gone already.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return list(conns.values())


class SimulatedProvider(StartStop):
    """A fake LLM provider on a loopback port. Use as a context manager or call start()/stop().

    ``models``: ``None`` answers any model id (``GET /v1/models`` lists :data:`DEFAULT_MODELS`); a list makes
    every other model a 404 model-not-found. ``stream_chunks`` / ``chunk_delay`` shape streams (override
    per request with the ``x-simulated-chunks`` / ``x-simulated-chunk-delay`` headers). ``gzip`` encodes
    every JSON answer when the client accepts gzip. ``clock`` (monotonic seconds) drives time-based fault
    recovery and the request log's timestamps; ``seed`` the probabilistic faults.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        models: Iterable[str] | None = None,
        stream_chunks: int = 5,
        chunk_delay: float = 0.0,
        gzip: bool = False,
        clock: Clock = time.monotonic,
        seed: int = 0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.models: list[str] | None = list(models) if models is not None else None
        self.stream_chunks = stream_chunks
        self.chunk_delay = chunk_delay
        self.gzip = gzip
        self.clock = clock
        self.logger = logger or logging.getLogger("otel_model_health.testing")
        self.plan = FaultPlan(clock=clock, rng=random.Random(seed))
        self.requests_log = RequestLog()
        self._stopping = threading.Event()
        self._wake = threading.Condition()
        self._release_generation = 0
        self._hanging = 0  # requests blocked in hang() right now
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the simulated provider is already running")
        self._stopping.clear()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._server = _Server((self.host, self.port), self, family)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="simulated-provider",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release every hang and delay, close every connection, and join every thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        server.shutdown()
        thread.join(_JOIN_TIMEOUT)
        server.server_close()
        for conn_thread in server.close_connections():
            conn_thread.join(_JOIN_TIMEOUT)
        self._server = None
        self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    # --- addresses ----------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("start() the simulated provider first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """For ``openai.OpenAI(base_url=...)``."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """For ``anthropic.Anthropic(base_url=...)`` (the SDK appends ``/v1/messages`` itself)."""
        return self.base_url

    @property
    def azure_endpoint(self) -> str:
        """For ``openai.AzureOpenAI(azure_endpoint=...)``."""
        return self.base_url

    @property
    def gemini_base_url(self) -> str:
        return f"{self.base_url}/v1beta"

    # --- faults -------------------------------------------------------------------------------------------

    def script(
        self,
        model: str,
        fault: Fault,
        *,
        times: int | None = None,
        for_seconds: float | None = None,
        after_requests: int = 0,
        api: ApiName | None = None,
        probability: float = 1.0,
    ) -> FaultRule:
        """Give ``fault`` to requests for ``model`` (``"*"``: any model). With ``times`` the model recovers
        after that many faulty answers; with ``for_seconds`` once that long has passed on the provider's
        clock; ``after_requests`` lets that many matching requests through first. Rules are tried in the
        order they were added; the first live, matching one wins."""
        rule = FaultRule(
            model=model,
            fault=fault,
            times=times,
            for_seconds=for_seconds,
            after_requests=after_requests,
            api=api,
            probability=probability,
        )
        return self.plan.add(rule)

    def load_scenario(self, scenario: str | Mapping[str, Any] | list[Any]) -> list[FaultRule]:
        """Add the rules of a JSON scenario (a JSON string, a list of rule dicts, or ``{"rules": [...]}``)."""
        data = json.loads(scenario) if isinstance(scenario, str) else scenario
        rules = rules_from_json(data)
        self.plan.extend(rules)
        return rules

    def clear_faults(self) -> None:
        self.plan.clear()

    def wait_for_hangs(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` requests are hanging; a test calls it before ``release_hangs()``
        so the release cannot come before the request started hanging."""
        with self._wake:
            return self._wake.wait_for(lambda: self._hanging >= count, timeout)

    def release_hangs(self) -> None:
        """Let every hanging request go on (it then answers normally)."""
        with self._wake:
            self._release_generation += 1
            self._wake.notify_all()

    # --- request log --------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        return self.requests_log.snapshot()

    def requests_for(self, model: str | None = None, *, path: str | None = None) -> list[RequestRecord]:
        return [
            r
            for r in self.requests_log.snapshot()
            if (model is None or r.model == model) and (path is None or r.path == path)
        ]

    def clear_requests(self) -> None:
        self.requests_log.clear()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        return self.requests_log.wait_for(count, timeout)

    # --- used by the handler ------------------------------------------------------------------------------

    def accepts_model(self, model: str | None) -> bool:
        return self.models is None or model in self.models

    def listed_models(self) -> list[str]:
        return list(self.models) if self.models is not None else list(DEFAULT_MODELS)

    def sleep(self, seconds: float) -> None:
        """Wait, but give up at once when stop() is called."""
        if self._stopping.wait(seconds):
            raise Abort

    def hang(self) -> None:
        """Block until release_hangs() (return) or stop() (raise Abort)."""
        with self._wake:
            generation = self._release_generation
            self._hanging += 1
            self._wake.notify_all()
            try:
                self._wake.wait_for(lambda: self._stopping.is_set() or self._release_generation != generation)
            finally:
                self._hanging -= 1
        if self._stopping.is_set():
            raise Abort
