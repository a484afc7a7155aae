"""What arrived at the simulated provider, so tests can assert on it (e.g. how many attempts a retry made)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from otel_model_health.redact import REDACTED, SECRET_HEADERS


@dataclass(slots=True)
class RequestRecord:
    """One request. Secret header values (Authorization, x-api-key, api-key, ...) are replaced by
    ``[REDACTED]``; ``fault`` is the kind of fault injected (``None``: a normal answer); ``status`` is the
    HTTP status sent (``None`` when no status line was sent: a hang or a reset before the response)."""

    seq: int
    time: float
    method: str
    path: str
    query: str
    api: str | None
    operation: str | None
    model: str | None
    stream: bool
    headers: dict[str, str]
    body: Mapping[str, Any] | None
    fault: str | None = None
    status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


class RequestLog:
    """Append-only, thread-safe; ``wait_for`` lets a test block until a (hanging) request has arrived."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._records: list[RequestRecord] = []
        self._seq = 0

    def append(self, **fields: Any) -> RequestRecord:
        with self._cond:
            self._seq += 1
            record = RequestRecord(seq=self._seq, **fields)
            self._records.append(record)
            self._cond.notify_all()
            return record

    def snapshot(self) -> list[RequestRecord]:
        with self._cond:
            return list(self._records)

    def clear(self) -> None:
        with self._cond:
            self._records.clear()

    def wait_for(self, count: int, timeout: float) -> bool:
        """True once at least ``count`` requests are logged; False after ``timeout`` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._records) >= count, timeout)
