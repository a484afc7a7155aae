"""``otel-model-health``: the command line (``demo``, ``probe``, ``status``). See docs/cli.md.

Exit codes: 0 healthy / finished, 1 a model or the app is not healthy, 2 usage error or unreachable
endpoint, 130 interrupted (Ctrl-C). Standard library ``argparse`` only: no extra dependency.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from .._version import __version__
from .text import printable

EXIT_OK = 0
EXIT_UNHEALTHY = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, like the commands' own errors (argparse adds the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import demo, probe_cmd, status_cmd

    parser = _Parser(
        prog="otel-model-health",
        description="Which LLM models are healthy? A demo, a prober and a health-endpoint reader.",
        epilog="Exit codes: 0 healthy, 1 not healthy, 2 usage error or unreachable, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo.add_parser(subparsers)
    probe_cmd.add_parser(subparsers)
    status_cmd.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (argparse exits 2 itself on a usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code
