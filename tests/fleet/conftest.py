"""Fixtures of the fleet tests: a real redis-server per module (tests/kit/redis_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kit.redis_server import RedisServer, redis_server


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server
