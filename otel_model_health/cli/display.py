"""Terminal output: a live table redrawn in place on a TTY, plain lines everywhere else.

Other threads (registry listeners, the Sentry transport) only ``log()`` lines into a queue; the main
thread prints them in ``refresh()``. So nothing but the main thread writes to the terminal, and a slow
terminal or pipe never blocks a model call.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TextIO

from .table import Row, render_table

_UP_AND_CLEAR = "\x1b[{n}F\x1b[J"  # cursor to the start of the line n lines up, clear to the end


def use_live_output(stream: TextIO, *, plain: bool) -> bool:
    """A live (ANSI) table only on a real terminal that understands it."""
    if plain:
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        tty = bool(isatty()) if isatty is not None else False
    except (OSError, ValueError):
        tty = False
    return tty and os.environ.get("TERM", "") != "dumb"


class Display:
    """Prints log lines as they come and the health table, live or as periodic plain snapshots."""

    def __init__(
        self,
        *,
        live: bool,
        out: TextIO | None = None,
        snapshot_every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.live = live
        self.colour = live and "NO_COLOR" not in os.environ
        self._out = out if out is not None else sys.stdout
        self._lines: deque[str] = deque()
        self._lock = threading.Lock()
        self._drawn = 0  # lines of the live table currently on screen
        self._snapshot_every_s = snapshot_every_s
        self._clock = clock
        self._last_snapshot = clock()

    def log(self, line: str) -> None:
        """Queue a line; any thread may call this."""
        with self._lock:
            self._lines.append(line)

    def _take(self) -> list[str]:
        with self._lock:
            lines = list(self._lines)
            self._lines.clear()
        return lines

    def refresh(self, rows: Sequence[Row], header: str, *, force_table: bool = False) -> None:
        """Print queued lines, then (live) redraw the table below them, or (plain) a snapshot when due."""
        lines = self._take()
        out = self._out
        if self.live:
            text = []
            if self._drawn:
                text.append(_UP_AND_CLEAR.format(n=self._drawn))
            text.extend(line + "\n" for line in lines)
            plain_table = render_table(rows)
            table = self._fit([header, *plain_table])
            if self.colour and table[1:] == plain_table:  # nothing was cut: colour codes are safe
                table = [table[0], *render_table(rows, colour=True)]
            text.extend(line + "\n" for line in table)
            out.write("".join(text))
            self._drawn = len(table)
        else:
            for line in lines:
                out.write(line + "\n")
            now = self._clock()
            # A forced (final) table right after a periodic one with nothing in between would repeat it.
            repeat = not lines and now - self._last_snapshot < 1.0
            if (force_table and not repeat) or now - self._last_snapshot >= self._snapshot_every_s:
                self._last_snapshot = now
                out.write("\n".join([header, *render_table(rows), ""]) + "\n")
        out.flush()

    def _fit(self, lines: list[str]) -> list[str]:
        """Cut lines to the terminal width: a wrapped line would break the cursor-up redraw."""
        width = shutil.get_terminal_size().columns - 1
        return [line if len(line) <= width else line[: max(1, width - 1)] + "…" for line in lines]

    def finish(self) -> None:
        """Leave the last table on screen and print what is still queued below it."""
        for line in self._take():
            self._out.write(line + "\n")
        self._drawn = 0
        self._out.flush()

    def print(self, line: str = "") -> None:
        """Print right away (main thread only; not while a live table is on screen)."""
        self._out.write(line + "\n")
        self._out.flush()
