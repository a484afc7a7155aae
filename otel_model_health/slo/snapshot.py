"""A series' history handed from one process of a fleet to another (docs/slo.md, "Fleet").

Every process of a fleet counts every process's calls (the fleet store feeds it the others' outcomes), so
any process's history is the fleet's. A process that starts later has none of the time before it started:
one process a minute writes each series to Redis (``fleet/slo_sync.py``), and a process that starts adds a
snapshot taken before its series began to that series, bucket for bucket. Series of a fleet registry are
on the wall clock's frame (``Plan.frame``), so two processes' buckets are the same wall-clock intervals.

A snapshot is ``header JSON`` + ``\\n`` + zlib(good counts + bad counts), the header giving the layout and
the ring heads. Anything else is refused (``ValueError``) and counted by the caller.
"""

from __future__ import annotations

import json
import zlib
from array import array
from typing import Final

from ..health.history import History
from .tracker import Series

VERSION: Final = 1
_ITEM: Final = array("I").itemsize


def encode(series: Series, now: float) -> bytes:
    """``now``: the registry clock (the snapshot holds every call counted up to it)."""
    history = series.history
    header = {
        "v": VERSION,
        "t": series.read_now(now),
        "tiers": [[t.width_s, t.size] for t in history.layout.tiers],
        "heads": history.heads,
        "pos": history.pos,
        "edge": history.edge,
    }
    body = zlib.compress(history.good.tobytes() + history.bad.tobytes())
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + body


def seed(series: Series, blob: bytes, now: float) -> bool:
    """Add ``blob``'s counts to ``series`` when it was taken before the series was created (so no call is
    counted twice) and the series was not seeded yet. ``now``: the registry clock. True when added."""
    if series.seeded:
        return False
    layout = series.history.layout
    header_json, sep, body = blob.partition(b"\n")
    if not sep:
        raise ValueError("not a snapshot")
    header = json.loads(header_json)
    tiers = [[t.width_s, t.size] for t in layout.tiers]
    if not isinstance(header, dict) or header.get("v") != VERSION or header.get("tiers") != tiers:
        raise ValueError("another version's or another layout's snapshot")
    heads, edge = header.get("heads"), header.get("edge")
    taken = header.get("t")
    if not isinstance(taken, (int, float)) or isinstance(taken, bool):
        raise ValueError("snapshot time")
    if not (isinstance(heads, list) and len(heads) == len(tiers) and all(type(h) is int for h in heads)):
        raise ValueError("snapshot heads")
    if type(edge) is not int:
        raise ValueError("snapshot edge")
    raw = zlib.decompressobj().decompress(body, 2 * layout.size * _ITEM + 1)
    if len(raw) != 2 * layout.size * _ITEM:
        raise ValueError("snapshot size")
    if float(taken) > series.created:
        return False  # it may hold calls the series counted itself
    old = History(layout, heads[0] * layout.tiers[0].width_s)
    old.good = array("I", raw[: layout.size * _ITEM])
    old.bad = array("I", raw[layout.size * _ITEM :])
    old.heads = list(heads)
    old.pos = heads[0] % layout.tiers[0].size
    old.edge = edge
    framed = series.read_now(now)
    live = series.history
    old.advance(framed)  # both on the same buckets: the same heads, slot for slot
    live.advance(framed)
    if old.heads != live.heads:
        return False  # a snapshot from the future (a clock far off): nothing to line up
    for mine, theirs in ((live.good, old.good), (live.bad, old.bad)):
        for i, count in enumerate(theirs):
            if count:
                mine[i] = min(mine[i] + count, 0xFFFFFFFF)
    series.seeded = True
    return True
