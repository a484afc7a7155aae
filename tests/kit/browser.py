"""Headless Chromium for the status page's tests: Debian's ``chromium`` driven by Playwright's Python
package (Playwright's own browser download is not used: ``executable_path`` points at the system one).
Not re-exported by ``kit``; `make test` installs the ``chromium`` package (Makefile, SYSTEM_PACKAGES)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import pytest

# Flags that keep a root, headless, offline Chromium quiet and self-contained.
CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str:
    """The system Chromium; a missing one fails the test loudly (make test installs it), never skips."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "no chromium on PATH: install Debian's `chromium` package (make test does)"
        pytest.fail(message, pytrace=False)
    return path


@contextmanager
def browser() -> Iterator[Any]:
    """A launched headless Chromium (a Playwright ``Browser``)."""
    from playwright import sync_api  # the dev extra's; imported here so kit imports without it

    executable = chromium_path()
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            yield launched
        finally:
            launched.close()
