"""``python -m otel_model_health.dashboards [DIR]``: copy the dashboard and the rules into DIR (default:
the current directory) and print where they went."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from . import FILES, path


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else Path.cwd()
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        copied = shutil.copyfile(path(name), target / name)
        print(copied)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
