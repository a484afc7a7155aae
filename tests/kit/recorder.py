"""A HealthRecorder that keeps every result in a list, for tests of the instrumentation alone."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from otel_model_health import ModelKey, Outcome
from otel_model_health.health.types import CallResult


class Recorded(NamedTuple):
    key: ModelKey
    outcome: Outcome
    kwargs: dict[str, Any]  # the other fields of the CallResult, by record()'s keyword names

    @property
    def error_type(self) -> str | None:
        return self.kwargs.get("error_type")


def _ticks() -> Callable[[], float]:
    """1.0, 2.0, 3.0 …: each call to now() a later time."""
    count = itertools.count(1)
    return lambda: float(next(count))


@dataclass
class ListRecorder:
    """Implements the HealthRecorder protocol of health/types.py."""

    records: list[Recorded] = field(default_factory=list)
    clock: Callable[[], float] = field(default_factory=_ticks)

    def now(self) -> float:
        return self.clock()

    def has_succeeded(self, key: ModelKey) -> bool:
        return any(r.key == key and r.outcome is Outcome.SUCCESS for r in self.records)

    def tracks(self, key: ModelKey) -> bool:
        return True  # every key recorded here has its own series

    def record_result(self, key: ModelKey, result: CallResult) -> None:
        kwargs: dict[str, Any] = result._asdict()
        outcome = kwargs.pop("outcome")
        kwargs["operation"] = kwargs.pop("health_operation")
        self.records.append(Recorded(key, outcome, kwargs))

    @property
    def outcomes(self) -> list[Outcome]:
        return [r.outcome for r in self.records]

    @property
    def verdicts(self) -> list[tuple[Outcome, str | None]]:
        """(outcome, error_type) of each record."""
        return [(r.outcome, r.error_type) for r in self.records]
