"""The fleet store's Redis side: a flusher thread and a subscriber thread, both daemons.

The flusher wakes every ``flush_interval_s`` (at once after a failure or a held transition), sends what
is queued in one script call (``scripts.FLUSH``: publish the outcomes, touch the model set, arbitrate the
held transitions, release permits) and hands each held transition back to the registry, won or lost.
The subscriber receives the other processes' outcomes and won transitions on the prefix's channel, and
resynchronises every model's record when it (re)connects. A Redis error anywhere marks the link down:
a WARNING once, ``errors`` counted, held transitions delivered as this process's own, queued outcomes
dropped (counted), and a new attempt every ``RETRY_S``.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import quote

import redis
from redis.exceptions import RedisError

from ..._internal import report_internal_error
from ...keys import ModelKey
from ...option_values import redact_url
from ...redact import scrub
from ..types import HealthTransition, TransitionKind
from . import codec, scripts
from .slo_sync import SloSync

if TYPE_CHECKING:
    from ...slo.tracker import Series
from .store import Held, RedisStore

logger: Final = logging.getLogger("otel_model_health")

RETRY_S: Final = 0.5  # between attempts while Redis is unreachable
MAX_BATCH: Final = 2000  # outcomes per script call
_ERRORS: Final = (RedisError, OSError, ValueError)


class FleetHost(Protocol):
    """What the link needs of the registry (``HealthRegistry`` implements it)."""

    def now(self) -> float: ...

    def wall_time(self) -> float: ...

    def to_monotonic(self, epoch_s: float) -> float: ...

    def fleet_apply(self, outcomes: Sequence[codec.RemoteOutcome]) -> None: ...

    def fleet_adopt(self, key: ModelKey, record: codec.FleetRecord) -> None: ...

    def fleet_deliver(self, transitions: Sequence[HealthTransition]) -> None: ...

    def fleet_provider(self, kind: TransitionKind, provider: str, models: Sequence[ModelKey]) -> None: ...

    def fleet_slo_snapshots(self) -> list[tuple[ModelKey, Series, bytes]]: ...

    def fleet_slo_seed(self, key: ModelKey, slo: str, blob: bytes) -> bool: ...

    def model_keys(self) -> list[ModelKey]: ...


class Link:
    def __init__(self, store: RedisStore, host: FleetHost) -> None:
        self.store = store
        self.host = host
        timeout = store.socket_timeout_s
        self.client = redis.Redis.from_url(
            store.url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=None
        )  # retry=None: no retries (redis-py's default retries 10 times): a failure falls back at once
        self.channel = f"{store.prefix}events"
        self._flush = self.client.register_script(scripts.FLUSH)
        self._acquire = self.client.register_script(scripts.ACQUIRE)
        self._read = self.client.register_script(scripts.READ)
        self.connected = True  # until an operation fails: records are shared from the start
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()  # one flush at a time (the thread, or flush_now)
        self._ids: dict[ModelKey, str] = {}
        self._permit_ids = itertools.count(1)  # next() is atomic: callers' threads share it
        self.slo = SloSync(store, host, self.client)
        self._threads = [
            threading.Thread(target=self._flush_loop, name="model-health-fleet-flush", daemon=True),
            threading.Thread(target=self._listen_loop, name="model-health-fleet-listen", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float) -> None:
        self.flush_now(timeout)
        self._stop.set()
        self.store.wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self.client.close()

    # --- state ------------------------------------------------------------------------------------
    def _failed(self, what: str, exc: BaseException) -> None:
        self.store.errors += 1
        self._retry_at = time.monotonic() + RETRY_S
        if self.connected:
            self.connected = False
            logger.warning(
                "model health: Redis at %s failed (%s: %s); each process uses its own verdict until it is "
                "back (docs/fleet.md)",
                redact_url(self.store.url),
                what,
                exc,
            )

    def _succeeded(self) -> None:
        if not self.connected:
            self.connected = True
            logger.warning(
                "model health: Redis at %s is back; fleet state resumes", redact_url(self.store.url)
            )

    def _id(self, key: ModelKey) -> str:
        ids = self._ids
        found = ids.get(key)
        if found is None:
            if len(ids) > 4096:
                ids.clear()
            found = ids[key] = codec.model_id(key)
        return found

    # --- flushing ----------------------------------------------------------------------------------
    def _flush_loop(self) -> None:
        store = self.store
        while not self._stop.is_set():
            store.wake.wait(store.flush_interval_s)
            store.wake.clear()
            try:
                with self._flush_lock:
                    self._drain()
                    self._probe()
                if self.connected:
                    self._slo_write()
            except Exception:
                report_internal_error("fleet flush")

    def flush_now(self, timeout: float) -> bool:
        """Flush in the calling thread; True when everything queued reached Redis."""
        if not self._flush_lock.acquire(timeout=max(0.0, timeout)):
            return False
        try:
            self._drain()
            return self.connected
        finally:
            self._flush_lock.release()

    def _drain(self) -> None:
        store = self.store
        while store.outcomes or store.proposals or store.releases:
            self._flush_batch()

    def _flush_batch(self) -> None:
        store = self.store
        outcomes = [store.outcomes.popleft() for _ in range(min(MAX_BATCH, len(store.outcomes)))]
        held = [store.proposals.popleft() for _ in range(len(store.proposals))]
        releases = [store.releases.popleft() for _ in range(len(store.releases))]
        if not self.connected and time.monotonic() < self._retry_at:
            self._not_shared(outcomes, held)
            return
        try:
            reply = self._send(outcomes, held, releases)
        except _ERRORS as exc:
            self._failed("flush", exc)
            self._not_shared(outcomes, held)
            return
        self._succeeded()
        self._settle(held, reply)

    def _slo_write(self) -> None:
        try:
            self.slo.maybe_write()
        except _ERRORS as exc:
            self._failed("SLO snapshot", exc)

    def _probe(self) -> None:
        """While Redis is marked down and nothing is queued, try it again on schedule: transitions are
        arbitrated again as soon as it answers, not only after the next outcome."""
        if self.connected or time.monotonic() < self._retry_at:
            return
        try:
            self.client.ping()
        except _ERRORS as exc:
            self._failed("ping", exc)
            return
        self._succeeded()

    def _not_shared(self, outcomes: list[Any], held: list[Held]) -> None:
        # Outcomes recorded while Redis is unreachable stay in this process's verdict only (docs/fleet.md:
        # replayed later they would reach the fleet's windows out of time order); held transitions are
        # this process's own and its listeners report them.
        self.store.dropped += len(outcomes)
        if held:
            self.host.fleet_deliver([h.transition for h in held])

    def _send(self, outcomes: list[Any], held: list[Held], releases: list[Any]) -> list[Any]:
        store, host = self.store, self.host
        offset = host.wall_time() - host.now()
        rows = []
        seen: dict[str, None] = {}
        for key, result, now in outcomes:
            key_id = self._id(key)
            seen[key_id] = None
            message = result.error_message
            started = result.started_at
            rows.append(
                codec.encode_outcome(
                    key_id,
                    result,
                    now + offset,
                    None if started is None else started + offset,
                    scrub(message)[: codec.MAX_MESSAGE] if message else None,
                )
            )
        proposals = []
        in_batch: set[str] = set()
        for h in held:
            t = h.transition
            if t.kind in codec.FLAG_KINDS:
                target, keep_s, models = flag_target(t, store.ttl_s, self._id)
                proposals.append([target, t.kind.value, 0, 0, 0.0, 0, keep_s, models])
                continue
            target = self._id(t.key)
            base = store.versions.get(t.key, 0)
            open_until = t.state.open_until or 0.0
            proposals.append(
                [target, t.kind.value, base, 1 if target in in_batch else 0, open_until, h.level]
            )
            in_batch.add(target)
        payload = codec.encode_batch(store.origin, rows) if rows else ""
        result = self._flush(
            args=[
                store.prefix,
                store.origin,
                payload,
                json.dumps(list(seen)),
                json.dumps(proposals),
                store.ttl_s,
                store.max_keys,
                json.dumps([list(r) for r in releases]),
            ]
        )
        return list(result)

    def _settle(self, held: list[Held], reply: list[Any]) -> None:
        """Deliver each held transition: won, as this process's; lost, as remote, then follow the record."""
        store, host = self.store, self.host
        try:
            store.ignored += int(reply[0])
        except (ValueError, TypeError, IndexError):
            store.ignored += 1
        deliver: list[HealthTransition] = []
        follow: list[tuple[ModelKey, codec.FleetRecord]] = []
        answers = reply[1:]
        # A reply short of answers (not this version's script): the rest are this process's own.
        deliver.extend(h.transition for h in held[len(answers) :])
        for h, fields in zip(held, answers, strict=False):
            t = h.transition
            try:
                won = codec._text(fields[0]) == "1"
                record = codec.record_from_fields(list(fields[1:]))
            except (codec.Invalid, ValueError, TypeError, IndexError):
                store.ignored += 1
                deliver.append(t)
                continue
            if won:
                deliver.append(t)
                if t.kind in codec.BREAKER_KINDS:  # (the subscriber may have followed a newer one)
                    store.versions[t.key] = max(record.version, store.versions.get(t.key, 0))
            else:
                deliver.append(replace(t, remote=True))
                if t.kind in codec.BREAKER_KINDS and record.version > store.versions.get(t.key, 0):
                    follow.append((t.key, record))
        if deliver:
            host.fleet_deliver(deliver)
        for key, record in follow:
            host.fleet_adopt(key, record)

    # --- permits ---------------------------------------------------------------------------------------
    def acquire(self, key: ModelKey, period: int, expiry_s: float, trials: int) -> str | bool | None:
        if not self.connected and time.monotonic() < self._retry_at:
            return None
        member = f"{self.store.origin}:{next(self._permit_ids)}"
        try:
            granted, ignored = self._acquire(
                args=[self.store.prefix, self._id(key), period, member, int(expiry_s * 1000), trials]
            )
        except _ERRORS as exc:
            self._failed("permit", exc)
            return None
        self.store.ignored += int(ignored)
        return member if int(granted) else False

    # --- listening ------------------------------------------------------------------------------------
    def _listen_loop(self) -> None:
        pubsub: Any = None
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                    pubsub.subscribe(self.channel)
                    self._resync()
                    self._succeeded()
                message = pubsub.get_message(timeout=0.2)
                if message is not None:
                    self._on_message(message.get("data"))
            except _ERRORS as exc:
                self._failed("subscribe", exc)
                _close(pubsub)
                pubsub = None
                self._stop.wait(RETRY_S)
            except Exception:
                report_internal_error("fleet listen")
        _close(pubsub)

    def _on_message(self, data: object) -> None:
        store = self.store
        try:
            if not isinstance(data, bytes) or not data:
                raise codec.Invalid("empty message")
            tag, body = data[:1].decode(), data[1:]
            if tag == codec.OUTCOMES_TAG:
                origin, rows = codec.batch_origin(body)
                if origin != store.origin:
                    outcomes, ignored = codec.decode_rows(rows, self.host.to_monotonic)
                    store.ignored += ignored
                    if outcomes:
                        self.host.fleet_apply(outcomes)
            elif tag == codec.FLAG_TAG:
                flag = codec.decode_flag(body)
                if flag.origin != store.origin:
                    self.host.fleet_provider(flag.kind, flag.provider, flag.models)
            elif tag == codec.TRANSITION_TAG:
                key_id, record = codec.decode_transition(body)
                key = codec.parse_model_id(key_id)
                if record.origin != store.origin and record.version > store.versions.get(key, 0):
                    self.host.fleet_adopt(key, record)
            else:
                raise codec.Invalid("unknown message")
        except (codec.Invalid, UnicodeDecodeError):
            store.ignored += 1

    def _resync(self) -> None:
        """Follow every model's record: the models this process knows and those the fleet knows."""
        store = self.store
        ids: dict[str, None] = {self._id(key): None for key in self.host.model_keys()}
        try:
            members: Any = self.client.zrange(f"{store.prefix}models", 0, -1)
            for raw in members:
                ids[raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)] = None
        except redis.ResponseError:  # WRONGTYPE: someone else's value; the next flush replaces it
            store.ignored += 1
        chunk = list(ids)
        for start in range(0, len(chunk), 500):
            part = chunk[start : start + 500]
            reply = self._read(args=[store.prefix, *part])
            store.ignored += int(reply[0])
            for key_id, fields in zip(part, reply[1:], strict=False):
                if not fields:
                    continue
                try:
                    key = codec.parse_model_id(key_id)
                    record = codec.record_from_fields(list(fields))
                except (codec.Invalid, ValueError, TypeError):
                    store.ignored += 1
                    continue
                if record.version > store.versions.get(key, 0):
                    self.host.fleet_adopt(key, record)
        self.slo.seed(chunk)  # the time before this process started, of every model's SLO series


def alert_id(t: HealthTransition, model: str) -> str:
    """An SLO alert's flag id: the SLO, the alert (severity and windows) and the model."""
    a = t.slo_alert
    assert a is not None
    return f"{quote(a.slo, safe='')}|{a.severity}|{a.long_window_s:g}|{a.short_window_s:g}|{model}"


def flag_target(
    t: HealthTransition, ttl_s: int, model_id: Callable[[ModelKey], str]
) -> tuple[str, int, list[str]]:
    """(flag id, seconds the flag lives, models to announce) of a provider or SLO alert transition. An
    alert's flag lives for its long window: a process that starts late during the alert loses its own start
    to it (docs/fleet.md)."""
    if t.kind in codec.PROVIDER_KINDS:
        return codec.flag_id(t.provider or t.key.provider), ttl_s, [model_id(k) for k in t.provider_models]
    a = t.slo_alert
    return alert_id(t, model_id(t.key)), math.ceil(a.long_window_s) if a else ttl_s, []


def _close(pubsub: Any) -> None:
    if pubsub is not None:
        try:
            pubsub.close()
        except Exception:  # a dead connection may fail to close; nothing to do about it
            logger.debug("closing the fleet subscription failed", exc_info=True)
