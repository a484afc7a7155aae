"""Every httpx / httpx2 client created while this is on is measured: ``Client.__init__`` and
``AsyncClient.__init__`` of both modules are wrapped (wrapt), and each new client's transports are
wrapped as ``instrument_client`` does, so the clients SDKs build for themselves (openai, anthropic,
google-genai, mistralai, groq ...) are covered without a change to the app.

Why ``__init__`` rather than ``HTTPTransport.handle_request`` (what opentelemetry-instrumentation-httpx
patches): a client's transport chain is wrapped from the outside, the same place ``instrument_client``
puts it, so a transport the app or the SDK supplies (a retry or mock transport, a proxy mount) is
measured too, and an HTTP span of another instrumentation nests under our GenAI span. A request that is
not a model call costs the wrapper one method compare and a few suffix checks (``requests.match_endpoint``).

Never two measurements of one attempt: a transport already ours is left (``wrap_client(auto=True)``), and
an explicit ``instrument_client`` later replaces our automatic wrapper with its own options. ``unpatch()``
restores the original ``__init__`` and takes the automatic wrappers off the clients created meanwhile
(weakly tracked); explicit ones stay.
"""

from __future__ import annotations

import importlib
import threading
import weakref
from collections.abc import Iterable
from typing import Any, Final

import wrapt

from ..._internal import guarded
from .clients import AUTO_MARK, _replace_transports, wrap_client

MODULES: Final = ("httpx", "httpx2")
_CLASSES: Final = ("Client", "AsyncClient")

_lock = threading.Lock()
_patched: list[type[Any]] = []
_clients: weakref.WeakSet[Any] = weakref.WeakSet()
_options: dict[str, Any] = {}


def _after_init(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    wrapped(*args, **kwargs)
    if instance is None or not _patched:
        return  # unpatched while a wrapper above ours kept this function in the chain
    with guarded("autowrap.client"):
        wrap_client(instance, _options, auto=True)
        with _lock:  # a WeakSet is not safe to add to while unpatch() copies it
            _clients.add(instance)


def _is_ours(cls: type[Any]) -> bool:
    init = cls.__dict__.get("__init__")
    return isinstance(init, wrapt.FunctionWrapper) and init._self_wrapper is _after_init


def patch(modules: Iterable[str] = MODULES, **options: Any) -> list[str]:
    """Wrap the client classes of each importable module of ``modules``; the names patched.

    ``options``: for every transport wrapped (as ``ModelHealthTransport``'s). Idempotent."""
    done: list[str] = []
    with _lock:
        _options.clear()
        _options.update(options)
        for name in modules:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            for class_name in _CLASSES:
                cls = getattr(module, class_name)
                if not _is_ours(cls):
                    wrapt.wrap_function_wrapper(cls, "__init__", _after_init)
                    _patched.append(cls)
            done.append(name)
    return done


def unpatch() -> None:
    """Restore every ``__init__`` we wrapped and unwrap the clients wrapped automatically meanwhile."""
    with _lock:
        for cls in _patched:
            init = cls.__dict__.get("__init__")
            if isinstance(init, wrapt.FunctionWrapper) and init._self_wrapper is _after_init:
                cls.__init__ = init.__wrapped__
            # else something wrapped ours since: left in place, and _after_init stands aside (no _patched)
        _patched.clear()
        clients = list(_clients)
        _clients.clear()
    for client in clients:
        with guarded("autowrap.unwrap"):
            _replace_transports(client, _unwrap_auto)


def _unwrap_auto(transport: Any) -> Any:
    if transport is not None and getattr(transport, AUTO_MARK, False):
        return transport.wrapped
    return transport


def is_patched(cls: type[Any]) -> bool:
    """Whether ``cls.__init__`` is currently ours (tests, diagnostics)."""
    return _is_ours(cls)
