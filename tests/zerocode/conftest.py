"""The oteltap receiver of tests/configure for the zero-code tests, as a fixture of this directory (a
fixture imported from another test directory's module is not registered when both directories run)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from configure.otlp_receivers import OtelTap


@pytest.fixture(scope="module")
def oteltap() -> Iterator[OtelTap]:
    tap = OtelTap().start()
    try:
        yield tap
    finally:
        tap.stop()
