"""Demo traffic: real ``openai`` / ``anthropic`` SDK calls against the simulated provider, paced per model.

Each model gets one thread making calls at its ``calls_per_s``. ``client: transport`` models use an SDK
client whose httpx2 client went through ``instrument_client`` (every HTTP attempt is one outcome, SDK
retries included); ``client: monitor`` models call a plain SDK client inside a ``@monitor`` function (one
outcome per call, so the SDK's retries are turned off: a retry that succeeds would hide the error).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from ..instrument.decorators import monitor
from ..instrument.transport import instrument_client
from .scenario import ModelSpec

API_KEY: Final = "sk-demo-not-a-real-key"
CALL_TIMEOUT_S: Final = 5.0
PROMPT: Final = [{"role": "user", "content": "Is this model healthy?"}]


class ClientPool:
    """One SDK client per (api, provider, gateway, client kind); all closed by ``close()``."""

    def __init__(self, *, openai_base_url: str, anthropic_base_url: str) -> None:
        self._openai_base_url = openai_base_url
        self._anthropic_base_url = anthropic_base_url
        self._clients: dict[tuple[str, str, str, str], Any] = {}

    def caller(self, spec: ModelSpec) -> Callable[[bool], None]:
        """A function making one call of ``spec``'s model (streamed when its argument is True)."""
        client = self._client(spec)
        model = spec.model
        if spec.api == "anthropic":

            def call_anthropic(stream: bool) -> None:
                if stream:
                    with client.messages.create(
                        model=model, max_tokens=16, messages=PROMPT, stream=True
                    ) as events:
                        for _ in events:
                            pass
                else:
                    client.messages.create(model=model, max_tokens=16, messages=PROMPT)

            return call_anthropic

        def chat(*, model: str, stream: bool) -> Any:
            if stream:
                return client.chat.completions.create(
                    model=model,
                    messages=PROMPT,
                    max_tokens=16,
                    stream=True,
                    stream_options={"include_usage": True},
                )
            return client.chat.completions.create(model=model, messages=PROMPT, max_tokens=16)

        if spec.client == "monitor":
            # The decorator takes the model from the call's `model` argument.
            chat = monitor(provider=spec.provider, gateway=spec.gateway)(chat)

        def call_openai(stream: bool) -> None:
            result = chat(model=model, stream=stream)
            if stream:
                with result:
                    for _ in result:
                        pass

        return call_openai

    def _client(self, spec: ModelSpec) -> Any:
        slot = (spec.api, spec.provider, spec.gateway, spec.client)
        client = self._clients.get(slot)
        if client is not None:
            return client
        if spec.api == "anthropic":
            import anthropic

            http_client = instrument_client(
                anthropic.DefaultHttpxClient(), provider=spec.provider, gateway=spec.gateway
            )
            client = anthropic.Anthropic(
                base_url=self._anthropic_base_url,
                api_key=API_KEY,
                http_client=http_client,
                max_retries=1,
                timeout=CALL_TIMEOUT_S,
            )
        else:
            import openai

            if spec.client == "monitor":
                http_client = openai.DefaultHttpxClient()
                retries = 0
            else:
                # The simulated provider listens on 127.0.0.1, which the host table calls `self_hosted`:
                # provider= and gateway= say what it stands in for.
                http_client = instrument_client(
                    openai.DefaultHttpxClient(), provider=spec.provider, gateway=spec.gateway
                )
                retries = 1
            client = openai.OpenAI(
                base_url=self._openai_base_url,
                api_key=API_KEY,
                http_client=http_client,
                max_retries=retries,
                timeout=CALL_TIMEOUT_S,
            )
        self._clients[slot] = client
        return client

    def close(self) -> None:
        for client in self._clients.values():
            with contextlib.suppress(Exception):  # closing at exit: nothing useful to do about it
                client.close()
        self._clients.clear()


class TrafficWorker:
    """Calls one model at a steady pace until ``stop`` is set."""

    def __init__(
        self, spec: ModelSpec, call: Callable[[bool], None], stop: threading.Event, *, offset_s: float
    ) -> None:
        self.spec = spec
        self.calls = 0
        self.errors = 0
        self._call = call
        self._stop = stop
        self._offset_s = offset_s
        self.thread = threading.Thread(target=self._run, name=f"demo-traffic-{spec.model}", daemon=True)

    def _run(self) -> None:
        spec = self.spec
        if spec.calls_per_s <= 0 or self._stop.wait(self._offset_s):
            return
        interval = 1.0 / spec.calls_per_s
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.calls += 1
            stream = bool(spec.stream_every) and self.calls % spec.stream_every == 0
            try:
                self._call(stream)
            except Exception:
                self.errors += 1  # the instrumentation recorded it; the demo only counts
            next_at += interval
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (a slow call): go on at the pace, without a burst
                next_at = time.monotonic()
                delay = 0.0
            self._stop.wait(delay)
