"""``python -m tests.benchmarks [--quick] [--scale F] [--out docs/performance.md]``."""

from __future__ import annotations

import sys

from tests.benchmarks.run import main

if __name__ == "__main__":
    sys.exit(main())
