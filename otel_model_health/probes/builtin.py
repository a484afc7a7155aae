"""Built-in probes: the cheapest request that tells whether a model answers.

* ``OpenAIProbe`` — any OpenAI-compatible API (OpenAI, Azure-style gateways, OpenRouter, Groq, Together,
  vLLM ...): a 1-token chat completion (``max_tokens=1``), or ``GET {base_url}/models`` checking that the
  model is listed (no tokens spent, but it does not exercise the model itself).
* ``AnthropicProbe`` — a 1-token ``POST /v1/messages``.

Each probe is async and owns one ``httpx2`` (or ``httpx``) ``AsyncClient``, created on first use in the
monitor's loop, instrumented with our transport (``instrument_client``) and closed when the monitor
stops. The run is wrapped in the ``probe`` decorator, so the transport's attempt inherits
``model_health.operation = health_check`` and is the one outcome counted (innermost wins): a probe
produces exactly the span and outcome a real call to the same model would. Where the transport has no
model endpoint to observe (``mode="models"``: ``GET /models``), the decorator's span is the measurement,
and the HTTP status reaches it through ``ProbeHTTPError.status_code``, so the outcome table is the same
(503 → failure ``503``, 429 → rate limited, 404 → ``model_not_found`` ...).

API keys come from the arguments or ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY`` (read at each run, so a
rotated key is picked up); they are sent only in headers, never logged, never in ``repr``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, TypedDict, Unpack

from .. import semconv
from ..health.types import HealthRecorder
from ..instrument.decorators import probe
from ..instrument.transport import instrument_client
from ..keys import DIRECT_GATEWAY, ModelKey
from ..redact import scrub

ANTHROPIC_VERSION: Final = "2023-06-01"
OPENAI_BASE_URL: Final = "https://api.openai.com/v1"
ANTHROPIC_BASE_URL: Final = "https://api.anthropic.com"
PROBE_PROMPT: Final = "ping"


class ProbeHTTPError(Exception):
    """A probe request answered with a non-2xx status (or a 2xx that does not confirm the model).

    ``status_code`` is what the outcome classification reads; the message is scrubbed of key-like
    strings and cut short, since it may echo the provider's error body.
    """

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(scrub(message)[:300])
        self.status_code = status_code


def _http_module() -> Any:
    """httpx2 when installed (what the current SDKs use), else httpx. Imported at the first run: both
    are optional extras, and a monitor without built-in probes needs neither."""
    try:
        return importlib.import_module("httpx2")
    except ImportError:
        pass
    try:
        return importlib.import_module("httpx")
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "the built-in probes need httpx2 or httpx: pip install 'otel_model_health[httpx2]'"
        ) from exc


class HTTPProbeOptions(TypedDict, total=False):
    """The keyword options every built-in probe takes."""

    base_url: str | None
    api_key: str | None
    provider: str | None
    gateway: str | None
    headers: Mapping[str, str] | None
    client: Any
    timeout_s: float | None


class _HTTPProbe:
    """Shared plumbing: key, client lifecycle, the decorated call."""

    _env_var: str = ""
    _operation: str = semconv.OP_CHAT
    default_base_url: str = ""
    default_provider: str = ""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        provider: str | None = None,
        gateway: str | None = None,
        headers: Mapping[str, str] | None = None,
        client: Any = None,
        timeout_s: float | None = None,
    ) -> None:
        """``base_url`` and ``provider`` default to the class's ``default_base_url`` and
        ``default_provider``; ``api_key`` to its environment variable, read at each run."""
        self._key = ModelKey(
            provider=provider or self.default_provider, model=model, gateway=gateway or DIRECT_GATEWAY
        )
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self._api_key = api_key
        self._headers = dict(headers or {})
        self._user_client = client  # a client given by the caller is never closed here
        self._client: Any = None
        self._timeout_s = timeout_s
        self._recorder: HealthRecorder | None = None
        self._call: Callable[[Any], Any] | None = None

    @property
    def key(self) -> ModelKey:
        return self._key

    def __repr__(self) -> str:
        # No key, no headers: they may hold credentials.
        return f"<{type(self).__name__} {self._key} at {self.base_url}>"

    def bind_monitor(self, *, recorder: HealthRecorder, timeout_s: float) -> None:
        """Called by ``HealthMonitor.add``: record through the monitor; time out a little before it."""
        self._recorder = recorder
        if self._timeout_s is None:
            # The client's own timeout ends the request first (a clean `timeout` outcome and a closed
            # connection); the monitor's deadline is the backstop.
            self._timeout_s = max(0.001, timeout_s * 0.9)
        self._call = self._decorated(recorder)

    def api_key(self) -> str | None:
        return self._api_key if self._api_key is not None else os.environ.get(self._env_var) or None

    def _client_for_run(self) -> Any:
        if self._user_client is not None:
            return self._user_client
        if self._client is None:
            module = _http_module()
            timeout = self._timeout_s if self._timeout_s is not None else 10.0
            self._client = instrument_client(
                module.AsyncClient(timeout=timeout),
                registry=self._recorder,
                provider=self._key.provider,
                gateway=self._key.gateway,
            )
        return self._client

    async def __call__(self) -> object:
        call = self._call
        if call is None:  # used outside a monitor: record to the default registry
            call = self._call = self._decorated(None)
        return await call(self._client_for_run())

    def _decorated(self, recorder: HealthRecorder | None) -> Callable[[Any], Any]:
        """``_request`` measured as a health check of this probe's model."""
        return probe(
            provider=self._key.provider,
            model=self._key.model,
            gateway=self._key.gateway,
            operation=self._operation,
            registry=recorder,
        )(self._request)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _request(self, client: Any) -> object:  # pragma: no cover - overridden
        raise NotImplementedError


def _check(response: Any) -> Any:
    if not 200 <= response.status_code < 300:
        raise ProbeHTTPError(response.status_code, f"HTTP {response.status_code}: {response.text[:200]}")
    return response.json()


class OpenAIProbe(_HTTPProbe):
    """An OpenAI-compatible health probe: ``mode="chat"`` (default) or ``mode="models"``."""

    _env_var = "OPENAI_API_KEY"
    default_base_url = OPENAI_BASE_URL
    default_provider = semconv.PROVIDER_OPENAI

    def __init__(
        self, model: str, *, mode: Literal["chat", "models"] = "chat", **options: Unpack[HTTPProbeOptions]
    ) -> None:
        """``mode`` and the options of every built-in probe (see ``_HTTPProbe``)."""
        if mode not in ("chat", "models"):
            raise ValueError(f"mode must be 'chat' or 'models', got {mode!r}")
        self.mode = mode
        # GET /models is not a GenAI operation of the spec; a custom gen_ai.operation.name says so.
        self._operation = semconv.OP_CHAT if mode == "chat" else "list_models"
        super().__init__(model, **options)

    def _request_headers(self) -> dict[str, str]:
        headers = dict(self._headers)
        key = self.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    async def _request(self, client: Any) -> object:
        headers = self._request_headers()
        if self.mode == "models":
            data = _check(await client.get(f"{self.base_url}/models", headers=headers))
            listed = {m.get("id") for m in data.get("data", []) if isinstance(m, dict)}
            if self._key.model not in listed:
                raise ProbeHTTPError(404, f"model {self._key.model!r} is not listed by {self.base_url}")
            return True
        body = {
            "model": self._key.model,
            "messages": [{"role": "user", "content": PROBE_PROMPT}],
            "max_tokens": 1,
        }
        return _check(await client.post(f"{self.base_url}/chat/completions", json=body, headers=headers))


class AnthropicProbe(_HTTPProbe):
    """An Anthropic Messages API health probe (1-token message)."""

    _env_var = "ANTHROPIC_API_KEY"
    default_base_url = ANTHROPIC_BASE_URL
    default_provider = semconv.PROVIDER_ANTHROPIC

    async def _request(self, client: Any) -> object:
        headers = {"anthropic-version": ANTHROPIC_VERSION, **self._headers}
        key = self.api_key()
        if key:
            headers["x-api-key"] = key
        body = {
            "model": self._key.model,
            "max_tokens": 1,
            "messages": [{"role": "user", "content": PROBE_PROMPT}],
        }
        return _check(await client.post(f"{self.base_url}/v1/messages", json=body, headers=headers))
