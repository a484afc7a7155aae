"""Text from outside (a remote /health, a scenario file, an exception) made safe to print on one line."""

from __future__ import annotations

import sys
import unicodedata
from typing import Final

EXIT_USAGE: Final = 2

# Control characters (C0, DEL, C1: so ANSI / OSC escape sequences cannot act on the terminal), format
# characters (bidi overrides, zero-width), line and paragraph separators, and lone surrogates (which
# cannot be encoded, so printing them would raise).
_UNPRINTABLE: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def printable(text: object) -> str:
    """``text`` on one line: each run of whitespace becomes one space, unprintable characters go."""
    line = " ".join(str(text).split())
    return "".join(c for c in line if unicodedata.category(c) not in _UNPRINTABLE)


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for quoting a bad value in an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def usage_error(command: str, message: object) -> int:
    """Print ``otel-model-health COMMAND: error: MESSAGE`` as one line on stderr; returns exit code 2."""
    print(f"otel-model-health {command}: error: {printable(message)}", file=sys.stderr)
    return EXIT_USAGE
