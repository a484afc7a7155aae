"""SLO histories in Redis, for the processes that start later (docs/fleet.md, docs/slo.md "Fleet").

Every process's SLO series already count the whole fleet's calls (remote outcomes feed them). Once per
``slo_snapshot_s`` one process (whoever takes the lease ``<prefix>slo-lease``) writes each of its series
to ``<prefix>h:<slo>|<model id>`` (``slo/snapshot.py``), expiring after the SLO's period. A process reads
them when its subscriber (re)connects and adds each to its own series that began after it was taken.
Called from the link's threads; a Redis error is the link's to handle.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from ...keys import ModelKey
from . import codec

if TYPE_CHECKING:
    from ...slo.tracker import Series
    from .link import FleetHost
    from .store import RedisStore

CHUNK: Final = 200  # keys per MGET


class SloSync:
    def __init__(self, store: RedisStore, host: FleetHost, client: Any) -> None:
        self.store = store
        self.host = host
        self.client = client
        self.next_write = 0.0
        self.written = 0  # snapshots written by this process
        self.seeded = 0  # series this process seeded from snapshots

    def key(self, slo: str, key_id: str) -> str:
        return f"{self.store.prefix}h:{quote(slo, safe='')}|{key_id}"

    def maybe_write(self) -> None:
        """Every ``slo_snapshot_s``: write every series, if this process takes the lease."""
        store = self.store
        now = time.monotonic()
        if now < self.next_write or not store.slo_names:
            return
        self.next_write = now + store.slo_snapshot_s
        lease_ms = max(1, int(store.slo_snapshot_s * 1000 * 0.9))
        if not self.client.set(f"{store.prefix}slo-lease", store.origin, nx=True, px=lease_ms):
            return  # another process writes them this time
        found: list[tuple[ModelKey, Series, bytes]] = self.host.fleet_slo_snapshots()
        pipe = self.client.pipeline(transaction=False)
        for key, series, blob in found:
            slo = series.plan.slo
            pipe.set(self.key(slo.name, codec.model_id(key)), blob, ex=max(1, int(slo.period_s)))
        pipe.execute()
        self.written += len(found)

    def seed(self, key_ids: list[str]) -> None:
        """Read the snapshots of these models' series and hand each to the registry."""
        names: tuple[str, ...] = self.store.slo_names
        wanted = [(name, key_id) for key_id in key_ids for name in names]
        for start in range(0, len(wanted), CHUNK):
            part = wanted[start : start + CHUNK]
            blobs = self.client.mget([self.key(name, key_id) for name, key_id in part])
            for (name, key_id), blob in zip(part, blobs, strict=False):
                if blob is None:
                    continue
                try:
                    if not isinstance(blob, bytes):
                        raise codec.Invalid("snapshot")
                    self.seeded += self.host.fleet_slo_seed(codec.parse_model_id(key_id), name, blob)
                except (ValueError, TypeError):  # codec.Invalid is a ValueError; so are bad snapshots
                    self.store.ignored += 1
