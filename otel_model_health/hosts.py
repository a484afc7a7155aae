"""Which provider and gateway a request goes to, from its host name.

A host maps to a ``Route``: a fixed provider (``api.openai.com`` → ``openai``), a gateway whose provider
comes from the model id (``openrouter.ai``: ``anthropic/claude-3-opus`` → ``anthropic``), or neither, in
which case the provider is the API dialect of the endpoint (``/v1/messages`` → ``anthropic``, OpenAI paths
→ ``openai``). Loopback hosts are gateway ``self_hosted``; any other unknown host is its own gateway (its
host name), so two internal servers of the same model keep separate health.

The table is user-extendable: ``register_host()`` for the process, ``hosts=`` per transport. A key
starting with ``.`` matches that suffix (``.openai.azure.com``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from . import semconv
from .keys import DIRECT_GATEWAY, ModelKey

SELF_HOSTED: Final = "self_hosted"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a host sends model calls. ``provider=None``: from the model prefix (when
    ``provider_from_model``) or the endpoint's dialect. ``gateway=None``: the host name itself."""

    provider: str | None = None
    gateway: str | None = DIRECT_GATEWAY
    provider_from_model: bool = False


def gateway(name: str) -> Route:
    """A multi-provider gateway: the provider is the model id's prefix (``openai/gpt-4o``)."""
    return Route(provider=None, gateway=name, provider_from_model=True)


_BUILTIN: Final[dict[str, Route]] = {
    "api.openai.com": Route(semconv.PROVIDER_OPENAI),
    "api.anthropic.com": Route(semconv.PROVIDER_ANTHROPIC),
    ".openai.azure.com": Route(semconv.PROVIDER_AZURE_OPENAI),
    ".services.ai.azure.com": Route(semconv.PROVIDER_AZURE_OPENAI),
    "generativelanguage.googleapis.com": Route(semconv.PROVIDER_GEMINI),
    "aiplatform.googleapis.com": Route(semconv.PROVIDER_VERTEX_AI),
    ".aiplatform.googleapis.com": Route(semconv.PROVIDER_VERTEX_AI),
    "api.mistral.ai": Route(semconv.PROVIDER_MISTRAL),
    "api.groq.com": Route(semconv.PROVIDER_GROQ),
    "api.deepseek.com": Route(semconv.PROVIDER_DEEPSEEK),
    "api.x.ai": Route(semconv.PROVIDER_XAI),
    "api.cohere.com": Route(semconv.PROVIDER_COHERE),
    "api.cohere.ai": Route(semconv.PROVIDER_COHERE),
    "api.perplexity.ai": Route(semconv.PROVIDER_PERPLEXITY),
    "openrouter.ai": gateway("openrouter"),
    "api.together.xyz": gateway("together"),
    "api.together.ai": gateway("together"),
    "api.portkey.ai": gateway("portkey"),
    "api.fireworks.ai": gateway("fireworks"),
    "localhost": Route(None, SELF_HOSTED),
    "127.0.0.1": Route(None, SELF_HOSTED),
    "::1": Route(None, SELF_HOSTED),
    "0.0.0.0": Route(None, SELF_HOSTED),
    "host.docker.internal": Route(None, SELF_HOSTED),
}

# Hosts named by a label's end, not by a dot: Vertex AI's regional endpoints are
# `{location}-aiplatform.googleapis.com`, which no dot-suffix of the table matches.
_DASH_SUFFIXES: Final = (("-aiplatform.googleapis.com", Route(semconv.PROVIDER_VERTEX_AI)),)

_UNKNOWN_HOST: Final = Route(None, None)

_lock = threading.Lock()
_user: dict[str, Route] = {}
# Bumped on every register_host(): resolvers drop their caches when it changed (one int compare).
version = 0


def register_host(
    host: str,
    *,
    provider: str | None = None,
    gateway: str | None = DIRECT_GATEWAY,
    provider_from_model: bool = False,
) -> None:
    """Add or replace a host for the whole process. ``host`` starting with ``.`` matches a suffix."""
    global version
    with _lock:
        _user[host.strip().lower()] = Route(provider, gateway, provider_from_model)
        version += 1


def unregister_host(host: str) -> None:
    global version
    with _lock:
        _user.pop(host.strip().lower(), None)
        version += 1


def as_route(value: Route | str | tuple[str | None, str | None]) -> Route:
    """``hosts=`` values: a Route, a provider name, or ``(provider, gateway)``."""
    if isinstance(value, Route):
        return value
    if isinstance(value, str):
        return Route(value)
    provider, gateway_name = value
    return Route(provider, gateway_name, provider_from_model=provider is None and gateway_name is not None)


def _lookup(table: Mapping[str, Route], host: str) -> Route | None:
    hit = table.get(host)
    if hit is not None:
        return hit
    dot = host.find(".")
    while dot != -1:
        hit = table.get(host[dot:])
        if hit is not None:
            return hit
        dot = host.find(".", dot + 1)
    return None


def _is_loopback(host: str) -> bool:
    return host.startswith("127.") or host.endswith(".localhost")


class HostResolver:
    """Host → Route with a bounded cache; per-transport entries win over user and built-in ones."""

    __slots__ = ("_cache", "_extra", "_version")
    _MAX_CACHE: Final = 256

    def __init__(
        self, extra: Mapping[str, Route | str | tuple[str | None, str | None]] | None = None
    ) -> None:
        self._extra = {k.strip().lower(): as_route(v) for k, v in (extra or {}).items()}
        self._cache: dict[str, Route] = {}
        self._version = version

    def resolve(self, host: str) -> Route:
        if self._version != version:
            self._cache = {}
            self._version = version
        hit = self._cache.get(host)
        if hit is not None:
            return hit
        name = host.lower().rstrip(".")
        route = (
            _lookup(self._extra, name)
            or _lookup(_user, name)
            or _lookup(_BUILTIN, name)
            or next((r for suffix, r in _DASH_SUFFIXES if name.endswith(suffix)), None)
            or (Route(None, SELF_HOSTED) if _is_loopback(name) else _UNKNOWN_HOST)
        )
        if len(self._cache) >= self._MAX_CACHE:
            self._cache = {}  # many distinct hosts: rare; dropping the cache keeps memory bounded
        self._cache[host] = route
        return route


def provider_from_model(model: str) -> str | None:
    """``anthropic/claude-3-opus`` → ``anthropic`` (a gateway's model naming); None without a prefix."""
    slash = model.find("/")
    if slash <= 0:
        return None
    return model[:slash]


def route_key(
    resolver: HostResolver,
    host: str,
    model: str | None,
    *,
    fallback_provider: str,
    provider: str | None = None,
    gateway: str | None = None,
) -> ModelKey:
    """The key of a call to ``host``: the one rule the transport (request host) and the span processor
    (``server.address``) share, so a call seen by both is one model. ``provider`` / ``gateway`` override
    the table; ``fallback_provider`` is what the call itself says (the endpoint's dialect, the span's
    ``gen_ai.provider.name``) when the host does not tell."""
    route = resolver.resolve(host)
    chosen = provider or route.provider
    if chosen is None and route.provider_from_model and model:
        chosen = provider_from_model(model)
    return ModelKey(
        provider=chosen or fallback_provider,
        model=model or "",
        gateway=gateway or route.gateway or host,
    )
