"""Faults the simulated provider can inject, and the thread-safe plan that decides which request gets one.

A :class:`Fault` says *what* goes wrong with one response; a :class:`FaultRule` says *which* requests get it
(model, API, how many times, for how long). Both round-trip through plain dicts so the CLI and the demo can
describe scenarios in JSON.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal, cast, get_args

FaultKind = Literal[
    "ok",  # a normal answer, after ``delay`` seconds: the latency fault
    "status",  # an HTTP error status with the provider's error body
    "hang",  # no answer until release_hangs() or stop()
    "model_not_found",  # 404 with the provider's not-found body
    "malformed_json",  # 200 whose body is not valid JSON
    "gzip",  # a normal answer, gzip-encoded when the client accepts gzip
    "truncate",  # the body ends cleanly but early: a stream without its terminal event
    "reset",  # the connection is reset (RST) before the response or mid-body
    "stream_error",  # an SSE error event inside a 200 stream
]
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)

ApiName = Literal["openai", "anthropic", "azure", "gemini"]
API_NAMES: Final[tuple[str, ...]] = get_args(ApiName)

ANY_MODEL: Final = "*"

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Fault:
    """What goes wrong with one response. Build one with the class methods, e.g. ``Fault.status(503)``.

    ``delay`` (seconds) is waited before anything is sent, for every kind. ``after_chunks`` counts content
    chunks (OpenAI ``delta.content`` chunks, Anthropic ``content_block_delta`` events) sent before the fault
    strikes inside a stream; for a non-streaming response any value other than ``None`` means "mid-body".
    """

    kind: FaultKind = "ok"
    delay: float = 0.0
    http_status: int | None = None
    retry_after: float | None = None
    error_type: str | None = None
    message: str | None = None
    after_chunks: int | None = None

    # --- constructors -------------------------------------------------------------------------------------

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        """Answer normally, ``seconds`` late."""
        return cls("ok", delay=seconds)

    @classmethod
    def status(
        cls,
        status: int,
        *,
        retry_after: float | None = None,
        error_type: str | None = None,
        message: str | None = None,
        delay: float = 0.0,
    ) -> Fault:
        """An HTTP error with the provider's error body (``error_type`` defaults to the provider's own)."""
        if not 400 <= status <= 599:
            raise ValueError(f"an error status is 4xx or 5xx, got {status}")
        return cls(
            "status",
            delay=delay,
            http_status=status,
            retry_after=retry_after,
            error_type=error_type,
            message=message,
        )

    @classmethod
    def rate_limit(cls, retry_after: float | None = 1.0, *, message: str | None = None) -> Fault:
        """429 with a ``Retry-After`` header (whole seconds, plus ``retry-after-ms``); ``None`` sends none."""
        return cls.status(429, retry_after=retry_after, message=message)

    @classmethod
    def overloaded(cls) -> Fault:
        """529 ``overloaded_error``: Anthropic's overload answer (OpenAI-shaped endpoints get a 529 too)."""
        return cls.status(529)

    @classmethod
    def hang(cls, *, after_chunks: int | None = None) -> Fault:
        """Never answer (``after_chunks=None``) or stall mid-stream, until release_hangs() or stop()."""
        return cls("hang", after_chunks=after_chunks)

    @classmethod
    def model_not_found(cls) -> Fault:
        return cls("model_not_found", http_status=404)

    @classmethod
    def malformed_json(cls, *, after_chunks: int | None = None) -> Fault:
        """200 with a body (or, in a stream, an event after ``after_chunks`` chunks) that is not JSON."""
        return cls("malformed_json", after_chunks=after_chunks)

    @classmethod
    def gzip(cls) -> Fault:
        """Answer normally, gzip-encoded when the request said ``Accept-Encoding: gzip`` (streams are not)."""
        return cls("gzip")

    @classmethod
    def truncate(cls, *, after_chunks: int | None = None) -> Fault:
        """End the body cleanly but early: a stream without its terminal event (``[DONE]``,
        ``message_stop``), or cut after ``after_chunks`` chunks; a JSON body cut in half."""
        return cls("truncate", after_chunks=after_chunks)

    @classmethod
    def reset(cls, *, after_chunks: int | None = None) -> Fault:
        """Reset the connection (RST, SO_LINGER 0): before any byte when ``after_chunks`` is ``None``,
        else after that many chunks (a non-streaming body is cut in half)."""
        return cls("reset", after_chunks=after_chunks)

    @classmethod
    def stream_error(
        cls, *, after_chunks: int = 1, error_type: str | None = None, message: str | None = None
    ) -> Fault:
        """An error event inside a 200 stream (Anthropic ``event: error``, OpenAI ``data: {"error": ...}``).
        A non-streaming request gets the matching HTTP error instead (529 / 500)."""
        return cls("stream_error", after_chunks=after_chunks, error_type=error_type, message=message)

    # --- JSON ---------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that differ from the defaults, so scenarios stay short."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "kind" and value != f.default:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {sorted(unknown)}")
        kind = data.get("kind", "ok")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        fault = cls(**dict(data))
        if kind == "status" and fault.http_status is None:
            raise ValueError("a 'status' fault needs an 'http_status' code")
        return fault


@dataclass(slots=True)
class FaultRule:
    """Which requests get ``fault``: a model id (or ``"*"``), optionally one API, a budget of ``times``,
    a time window, a number of matching requests to let through first, and a probability."""

    model: str
    fault: Fault
    times: int | None = None
    for_seconds: float | None = None
    after_requests: int = 0
    api: ApiName | None = None
    probability: float = 1.0
    # Runtime state (not part of the JSON description).
    installed_at: float = field(default=0.0, compare=False)
    seen: int = field(default=0, compare=False)
    applied: int = field(default=0, compare=False)

    def matches(self, model: str | None, api: str) -> bool:
        if self.api is not None and self.api != api:
            return False
        return self.model == ANY_MODEL or (model is not None and self.model == model)

    def exhausted(self, now: float) -> bool:
        if self.times is not None and self.applied >= self.times:
            return True
        return self.for_seconds is not None and now - self.installed_at >= self.for_seconds

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "fault": self.fault.to_dict()}
        if self.times is not None:
            out["times"] = self.times
        if self.for_seconds is not None:
            out["for_seconds"] = self.for_seconds
        if self.after_requests:
            out["after_requests"] = self.after_requests
        if self.api is not None:
            out["api"] = self.api
        if self.probability != 1.0:
            out["probability"] = self.probability
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        allowed = {"model", "fault", "times", "for_seconds", "after_requests", "api", "probability"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown rule field(s): {sorted(unknown)}")
        if "model" not in data or "fault" not in data:
            raise ValueError("a rule needs 'model' and 'fault'")
        api = data.get("api")
        if api is not None and api not in API_NAMES:
            raise ValueError(f"unknown api {api!r}; one of {API_NAMES}")
        return cls(
            model=str(data["model"]),
            fault=Fault.from_dict(data["fault"]),
            times=data.get("times"),
            for_seconds=data.get("for_seconds"),
            after_requests=int(data.get("after_requests", 0)),
            api=cast("ApiName | None", api),
            probability=float(data.get("probability", 1.0)),
        )


class FaultPlan:
    """An ordered list of rules; the first live rule matching a request decides its fault.

    Thread-safe: the handler threads call :meth:`choose` concurrently. The clock (seconds, monotonic) and
    the random source are injectable so time-based recovery and probabilistic faults are deterministic in
    tests.
    """

    def __init__(self, *, clock: Clock = time.monotonic, rng: random.Random | None = None) -> None:
        self._clock = clock
        self._rng = rng if rng is not None else random.Random(0)
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> FaultRule:
        if rule.times is not None and rule.times < 0:
            raise ValueError("times must be >= 0")
        if not 0.0 <= rule.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        with self._lock:
            rule.installed_at = self._clock()
            self._rules.append(rule)
        return rule

    def extend(self, rules: Iterable[FaultRule]) -> None:
        for rule in rules:
            self.add(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def choose(self, model: str | None, api: str) -> Fault | None:
        """The fault for one request (consuming one use of its rule), or ``None`` for a normal answer."""
        with self._lock:
            now = self._clock()
            for rule in self._rules:
                if not rule.matches(model, api) or rule.exhausted(now):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after_requests:
                    continue  # the rule's warm-up: it lets this request pass to the next rules
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                rule.applied += 1
                return rule.fault
            return None

    def to_list(self) -> list[dict[str, Any]]:
        return [rule.to_dict() for rule in self.rules]


def rules_from_json(data: Any) -> list[FaultRule]:
    """Rules from a scenario description: a list of rule dicts, or ``{"rules": [...]}``."""
    if isinstance(data, Mapping):
        data = data.get("rules", [])
    if not isinstance(data, list):
        raise ValueError("a scenario is a list of rules or an object with a 'rules' list")
    return [FaultRule.from_dict(item) for item in data]
