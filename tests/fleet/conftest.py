"""Fixtures of the fleet tests: a real redis-server per module (tests/kit/redis_server.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit.redis_server import RedisServer, redis_server

# The Sentry test kit (an in-memory transport) lives beside the Sentry tests; the workers use it too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sentry"))


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server
