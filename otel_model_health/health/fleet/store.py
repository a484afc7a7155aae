"""``RedisStore``: the fleet store. Every process keeps its own ``ModelState`` per model (a
``MemoryStore``), fed with its own outcomes at once and with the other processes' outcomes as they
arrive; Redis arbitrates the transitions those states decide, so each one is won (and reported) by one
process. See docs/fleet.md for the design, the consistency model and every key.

The registry calls the hooks below with its lock held and they only touch memory (a bounded queue, a
dict); the link's two threads do the Redis work (``link.py``).
"""

from __future__ import annotations

import os
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from ..._internal import report_internal_error
from ...keys import ModelKey
from ...option_values import check_redis_url
from ...outcomes import Outcome
from ..model_state import ModelState
from ..store import MemoryStore
from ..types import CallResult, HealthTransition
from .codec import BREAKER_KINDS, FLAG_KINDS, model_id

if TYPE_CHECKING:
    from .link import FleetHost, Link

DEFAULT_QUEUE_SIZE: Final = 50_000  # outcomes waiting for the flusher; past it they are dropped, counted
DEFAULT_FLUSH_INTERVAL_S: Final = 0.05
DEFAULT_SOCKET_TIMEOUT_S: Final = 0.25
DEFAULT_SLO_SNAPSHOT_S: Final = 60.0
_SUCCESS: Final = Outcome.SUCCESS
_ARBITRATED: Final = BREAKER_KINDS | FLAG_KINDS


class Held:
    """A transition this process decided, waiting for Redis to say whether it won."""

    __slots__ = ("level", "transition")

    def __init__(self, transition: HealthTransition, level: int) -> None:
        self.transition = transition
        self.level = level


def import_redis() -> Any:
    """redis-py, or an ImportError naming the extra to install."""
    try:
        import redis  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError("a Redis store needs redis-py: pip install 'otel_model_health[redis]'") from exc
    return redis


class RedisStore(MemoryStore):
    """Health shared by every process (and replica) that uses the same Redis or Valkey and prefix.

    ``url``: ``redis://``, ``rediss://`` or ``unix://``. ``prefix``: every key and the channel start with
    it (default ``model_health:{service_name}:``). Pass it to ``HealthRegistry(store=...)`` or
    ``configure(store=...)``; one store serves one registry. redis-py (``otel_model_health[redis]``) is
    imported when the store starts.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        service_name: str | None = None,
        socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        slo_snapshot_s: float = DEFAULT_SLO_SNAPSHOT_S,
    ) -> None:
        self.url = check_redis_url("RedisStore url", url)
        self.prefix = prefix if prefix is not None else f"model_health:{service_name or 'unknown_service'}:"
        self.socket_timeout_s = float(socket_timeout_s)
        self.flush_interval_s = float(flush_interval_s)
        self.queue_size = max(1, int(queue_size))
        self.slo_snapshot_s = max(
            0.05, float(slo_snapshot_s)
        )  # how often the fleet's SLO histories are saved
        self.slo_names: tuple[str, ...] = ()  # the registry's SLOs (set by bind)
        self.ttl_s = 600
        self.errors = 0  # failed Redis operations
        self.dropped = 0  # outcomes not shared: queue full, or Redis unreachable when they were flushed
        self.ignored = 0  # foreign or malformed values under the prefix
        self.versions: dict[ModelKey, int] = {}  # the fleet record version each model follows
        self._host: FleetHost | None = None
        self._link: Link | None = None
        self._init_runtime()
        ref = weakref.ref(self)  # the hook must not keep every store alive for the process's lifetime
        os.register_at_fork(after_in_child=lambda: _after_fork(ref))

    def _init_runtime(self) -> None:
        # Fresh in a forked child: its own origin, queues and threads (started on first use).
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.outcomes: deque[tuple[ModelKey, CallResult, float]] = deque()
        self.proposals: deque[Held] = deque()
        self.releases: deque[tuple[str, int, str]] = deque()
        self.wake = threading.Event()
        self.started = False
        self._start_lock = threading.Lock()
        self._link = None

    # --- set-up ------------------------------------------------------------------------------------
    def bind(
        self,
        host: FleetHost,
        max_keys: int,
        new_state: Callable[[ModelKey, float], ModelState],
        ttl_s: float,
        slo_names: tuple[str, ...] = (),
    ) -> None:
        """Called once by the registry that uses this store; starts the link."""
        self.slo_names = slo_names
        if self._host is not None:
            raise ValueError("a RedisStore serves one HealthRegistry")
        import_redis()
        MemoryStore.__init__(self, max_keys, new_state)
        self._host = host
        self.ttl_s = max(1, int(ttl_s))
        self.ensure_started()

    def ensure_started(self) -> None:
        """Start the flusher and the subscriber (again in a forked child). Never raises."""
        if self.started or self._host is None:
            return
        with self._start_lock:
            self._start_once(self._host)

    def _start_once(self, host: FleetHost) -> None:
        if self.started:  # another thread was first
            return
        self.started = True
        try:
            from .link import Link  # noqa: PLC0415 (imports redis-py: only when a fleet store is used)

            self._link = Link(self, host)
            self._link.start()
        except Exception:
            report_internal_error("fleet store start")

    def close(self, timeout: float = 2.0) -> None:
        """Flush what is queued (bounded by ``timeout``) and stop the threads."""
        link = self._link
        if link is not None:
            link.stop(timeout)

    def flush(self, timeout: float = 2.0) -> bool:
        """Send what is queued now; True when it reached Redis (tests, shutdown)."""
        link = self._link
        return link.flush_now(timeout) if link is not None else False

    @property
    def connected(self) -> bool:
        link = self._link
        return link is not None and link.connected

    # --- the registry's hooks (its lock held: memory only) -------------------------------------------
    def queue(self, key: ModelKey, result: CallResult, now: float) -> None:
        if not self.started:
            self.ensure_started()  # a forked child's first record: its own threads (once)
        outcomes = self.outcomes
        if len(outcomes) >= self.queue_size:
            self.dropped += 1
            return
        outcomes.append((key, result, now))
        if result.outcome is not _SUCCESS:
            self.wake.set()  # a failure may decide a transition: share it now, not in 50 ms

    def hold(self, transitions: list[HealthTransition], *, remote: bool = False) -> list[HealthTransition]:
        """The transitions to deliver now; those Redis must arbitrate are kept until it answers.
        ``remote``: the section followed another process's breaker transition; its breaker steps are that
        process's, but a provider outage it completes here is still proposed (no other process may have
        seen the outage in a section of its own, and the flag makes it once per fleet anyway)."""
        link = self._link
        if link is None or not link.connected:
            # Redis unreachable: this process's own verdict, reported by it
            return [replace(t, remote=True) for t in transitions] if remote else transitions
        now_out: list[HealthTransition] = []
        for t in transitions:
            if remote and t.kind not in FLAG_KINDS:
                now_out.append(replace(t, remote=True))
                continue
            if t.remote or t.kind not in _ARBITRATED:
                now_out.append(t)
                continue
            state = self.lookup(t.key)
            self.proposals.append(Held(t, state.breaker.level if state is not None else 0))
        if len(now_out) != len(transitions):
            self.wake.set()
        return now_out

    def release_permit(self, key: ModelKey, period: int, member: str) -> None:
        self.releases.append((model_id(key), period, member))

    # --- permits (no lock held) ------------------------------------------------------------------------
    def acquire_permit(self, key: ModelKey, expiry_s: float, trials: int) -> str | bool | None:
        """A fleet-wide trial slot for the current half-open period: its member name, False when the
        fleet has none left, None when Redis did not answer (the local permit stands)."""
        link = self._link
        if link is None or not link.connected:
            return None
        return link.acquire(key, self.versions.get(key, 0), expiry_s, trials)

    def stats(self) -> dict[str, Any]:
        """Counters: failed Redis operations, outcomes not shared, foreign values ignored, and the SLO
        history snapshots this process wrote and the series it seeded from them (docs/slo.md)."""
        link = self._link
        return {
            "errors": self.errors,
            "dropped": self.dropped,
            "ignored": self.ignored,
            "slo_snapshots_written": 0 if link is None else link.slo.written,
            "slo_series_seeded": 0 if link is None else link.slo.seeded,
        }


def _after_fork(ref: weakref.ref[RedisStore]) -> None:
    store = ref()
    if store is not None:
        store._init_runtime()
