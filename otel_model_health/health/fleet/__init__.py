"""Fleet-wide health on Redis or Valkey (docs/fleet.md). ``RedisStore`` is importable without redis-py;
the package's link imports it when a store starts."""

from .store import RedisStore

__all__ = ["RedisStore"]
