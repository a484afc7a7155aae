"""``with thing:`` for the library's long-running parts: starts it, and stops it on the way out."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class StartStop:
    """Base of a class with ``start() -> Self`` and ``stop()``: the ``with`` statement calls them."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
