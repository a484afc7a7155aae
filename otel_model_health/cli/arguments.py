"""Argument types shared by the CLI commands."""

from __future__ import annotations

import argparse
import math
from typing import Final

# Longer waits overflow the platform's timeouts (threading, sockets); nothing here needs 11 days.
MAX_SECONDS: Final = 1_000_000


def positive_seconds(text: str) -> float:
    """An argparse type: a number of seconds, > 0 and at most ``MAX_SECONDS``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_SECONDS):
        raise argparse.ArgumentTypeError(f"must be > 0 and <= {MAX_SECONDS}, got {text!r}")
    return value
