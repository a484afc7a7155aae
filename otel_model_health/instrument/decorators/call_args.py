"""The arguments of one decorated call, and the lookups the decorators resolve once, at decoration.

``ArgSpec`` reads the wrapped function's signature once: the position, keyword availability and
default of every parameter. A lookup per call is then a dict hit and a tuple index, never
``inspect.signature(...).bind`` (which costs microseconds). ``CallArgs`` is what user callables
(``model=``, ``provider=``, ``gateway=``, ``attributes=``) receive. ``from_arguments`` reads a call's
content arguments, for error texts that must not quote them (``error_text``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Final

from ... import defaults
from ..error_text import RequestContent, TextCollector

_MISSING: Final[Any] = object()
# The arguments of a decorated call that carry its content (docs/decorators.md).
CONTENT_ARGUMENTS: Final = (
    "messages",
    "input",
    "prompt",
    "system",
    "contents",
    "instructions",
    "content",
    "text",
    "query",
)


def unwrap_descriptor(func: Any) -> Any:
    """The function inside a ``classmethod`` / ``staticmethod`` (decorators may sit outside them)."""
    if isinstance(func, (classmethod, staticmethod)):
        return func.__func__
    return func


class ArgSpec:
    """Where each parameter of the wrapped callable is found in a call's ``(args, kwargs)``."""

    __slots__ = ("_defaults", "_keyword", "_positions", "_signature", "_var_keyword")

    def __init__(self, func: Callable[..., Any]) -> None:
        self._positions: dict[str, int] = {}
        self._keyword: set[str] = set()
        self._defaults: dict[str, Any] = {}
        self._var_keyword = False
        self._signature: inspect.Signature | None
        try:
            self._signature = inspect.signature(unwrap_descriptor(func))
        except (TypeError, ValueError):  # builtins without a signature: names resolve by keyword only
            self._signature = None
            self._var_keyword = True
            return
        for index, param in enumerate(self._signature.parameters.values()):
            kind = param.kind
            if kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                self._positions[param.name] = index
            if kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                self._keyword.add(param.name)
            if kind is param.VAR_KEYWORD:
                self._var_keyword = True
            if param.default is not param.empty:
                self._defaults[param.name] = param.default

    def has(self, name: str) -> bool:
        """Whether a call can carry an argument ``name`` at all (decides "unknown" at decoration)."""
        return name in self._positions or name in self._keyword or self._var_keyword

    def lookup(
        self, name: str, instance: object, args: tuple[Any, ...], kwargs: Mapping[str, Any], default: Any
    ) -> Any:
        """The value passed for ``name`` (or its signature default). ``instance`` is wrapt's: when it
        is set, the call's ``args`` no longer hold the bound ``self``/``cls``."""
        value = kwargs.get(name, _MISSING) if kwargs else _MISSING
        if value is not _MISSING:
            return value
        index = self._positions.get(name)
        if index is not None:
            if instance is not None:
                index -= 1
            if 0 <= index < len(args):
                return args[index]
        return self._defaults.get(name, default)

    def bind(self, instance: object, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Every argument by name, defaults applied (for ``CallArgs.arguments``; not on the hot path)."""
        if self._signature is None:
            return dict(kwargs)
        full_args = args if instance is None else (instance, *args)
        try:
            bound = self._signature.bind(*full_args, **kwargs)
        except TypeError:
            bound = self._signature.bind_partial(*full_args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)


class CallArgs:
    """The arguments of one call, as given to the ``model`` / ``provider`` / ``gateway`` /
    ``attributes`` callables of ``monitor`` and ``probe``.

    ``args`` and ``kwargs`` are exactly what the caller passed (for a method, without ``self``/``cls``,
    which is ``instance``). ``get(name)`` finds a parameter by name wherever it was passed, falling back
    to its default in the signature; ``arguments`` binds all of them (slower: use ``get``).
    """

    __slots__ = ("_spec", "args", "instance", "kwargs")

    def __init__(
        self, spec: ArgSpec, instance: object, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        self._spec = spec
        self.instance = instance
        self.args = args
        self.kwargs = kwargs

    def get(self, name: str, default: Any = None) -> Any:
        return self._spec.lookup(name, self.instance, self.args, self.kwargs, default)

    @property
    def arguments(self) -> dict[str, Any]:
        return self._spec.bind(self.instance, self.args, self.kwargs)

    def __repr__(self) -> str:
        return f"CallArgs(args={self.args!r}, kwargs={self.kwargs!r})"


def from_arguments(
    spec: ArgSpec, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> RequestContent | None:
    """The content of a decorated call's arguments; None when content capture is on (nothing to remove)."""
    if defaults.capture_content_enabled():
        return None
    collector = TextCollector()
    for name in CONTENT_ARGUMENTS:
        value = spec.lookup(name, instance, args, kwargs, None)
        if value is not None:
            collector.walk(value, True)
    return RequestContent(collector.texts)
