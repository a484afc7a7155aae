"""``instrument_client`` / ``uninstrument_client``: wrap an httpx or httpx2 client's own transports in
place, and restore them.

Handing ``transport=`` to a client would drop its env proxies and pool limits; wrapping the transports
it already has (``_transport`` and every mounted one) keeps its proxies, pool limits, TLS and HTTP/2
settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from . import httpx_support
from .transports import AsyncModelHealthTransport, ModelHealthTransport, TransportBase

ClientT = TypeVar("ClientT")
# Set on the transports the zero-code instrumentor wrapped (``autowrap``): an explicit
# ``instrument_client`` replaces those, with its own options, instead of leaving them.
AUTO_MARK: Final = "_mh_auto"


def instrument_client(client: ClientT, **options: Any) -> ClientT:
    """Wrap ``client``'s transport and every mounted one (env proxies, ``mounts=``) in place; returns
    the client. Keeps the client's proxies, pool limits, TLS and HTTP/2 settings. Idempotent: an already
    wrapped transport is left as it is (with its options), except one the zero-code instrumentor wrapped,
    which this call's options replace. Options as for ``ModelHealthTransport``."""
    return wrap_client(client, options, auto=False)


def wrap_client(client: ClientT, options: dict[str, Any], *, auto: bool) -> ClientT:
    """``instrument_client``; ``auto``: for the instrumentor, which never replaces a wrapper."""
    name, wrapper = _wrapper_for(client, "instrument_client")

    def wrap(transport: Any) -> Any:
        if transport is None:
            return None
        if isinstance(transport, wrapper):
            if auto or not getattr(transport, AUTO_MARK, False):
                return transport  # never two measurements of one attempt
            transport = transport.wrapped
        wrapped = wrapper(transport, module=name, **options)
        if auto:
            setattr(wrapped, AUTO_MARK, True)
        return wrapped

    _replace_transports(client, wrap)
    return client


def uninstrument_client(client: ClientT) -> ClientT:
    """Undo ``instrument_client``: put ``client``'s original transports back (its own and every mounted
    one); returns the client. Calls made from then on are not measured; a response already streaming
    still ends its measurement. A client that was never instrumented is left as it is."""
    _wrapper_for(client, "uninstrument_client")

    def unwrap(transport: Any) -> Any:
        while isinstance(transport, TransportBase):
            transport = transport.wrapped
        return transport

    _replace_transports(client, unwrap)
    return client


def _wrapper_for(client: object, caller: str) -> tuple[str, type[TransportBase]]:
    """The module name of an httpx / httpx2 client and our transport class for it; TypeError for
    anything else."""
    name = httpx_support.module_name_of(client)
    if name is not None:
        module = httpx_support.load(name)
        if isinstance(client, module.AsyncClient):
            return name, AsyncModelHealthTransport
        if isinstance(client, module.Client):
            return name, ModelHealthTransport
    raise TypeError(f"{caller} expects an httpx or httpx2 client, got {type(client).__name__}")


def _replace_transports(client: object, replace: Callable[[Any], Any]) -> None:
    target: Any = client
    target._transport = replace(target._transport)
    target._mounts = {pattern: replace(transport) for pattern, transport in target._mounts.items()}
