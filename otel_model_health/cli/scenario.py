"""The demo scenario file: which models get traffic, and timed phases that make them misbehave.

A scenario is JSON (format in docs/demo-scenarios.md). Phases are mapped onto the simulated provider's
fault rules: a phase becomes one ``FaultRule`` per affected model, installed when the phase starts, with
``for_seconds`` set to the phase's length, so the provider itself ends the fault on time.

Validation happens once, at load, with messages that name the offending field, because the file is
written by hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Final

from ..health.types import BreakerConfig
from ..keys import DIRECT_GATEWAY, ModelKey
from ..testing.faults import Fault, FaultRule

DEFAULT_SCENARIO: Final = "default.json"

# A phase's `state` names the intent; each has a default fault, which `fault` / `probability` override.
STATES: Final[dict[str, tuple[dict[str, Any] | None, float]]] = {
    "healthy": (None, 1.0),
    "degrading": ({"kind": "status", "http_status": 503}, 0.3),
    "down": ({"kind": "status", "http_status": 503}, 1.0),
    "recovering": ({"kind": "status", "http_status": 503}, 0.1),
    "rate_limited": ({"kind": "status", "http_status": 429, "retry_after": 1}, 0.6),
    "slow": ({"kind": "ok", "delay": 1.5}, 1.0),
}
APIS: Final = ("openai", "anthropic")
CLIENTS: Final = ("transport", "monitor")
_BREAKER_FIELDS: Final = frozenset(f.name for f in fields(BreakerConfig))


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model that gets traffic. ``api`` is the wire format its calls use."""

    provider: str
    model: str
    gateway: str = DIRECT_GATEWAY
    api: str = "openai"
    client: str = "transport"  # "transport": SDK client with instrument_client; "monitor": @monitor
    calls_per_s: float = 1.0
    stream_every: int = 3  # every Nth call is streamed; 0: never
    probe: bool = True

    @property
    def key(self) -> ModelKey:
        return ModelKey(provider=self.provider, model=self.model, gateway=self.gateway)


@dataclass(frozen=True, slots=True)
class Phase:
    """From ``at`` to ``until`` (seconds since the start), ``models`` behave as ``state`` says."""

    at: float
    until: float
    state: str
    target: str  # what the file named: a model id, or "provider <name>"
    models: tuple[ModelSpec, ...]
    fault: Fault | None
    probability: float
    note: str | None = None

    @property
    def injects_failures(self) -> bool:
        """True when the phase makes calls fail (not only slow, not only rate-limited)."""
        fault = self.fault
        if fault is None or fault.kind == "ok":
            return False
        return not (fault.kind == "status" and fault.http_status == 429)

    def rules(self) -> list[FaultRule]:
        """The simulated provider's rules for this phase (none for `healthy`)."""
        if self.fault is None:
            return []
        return [
            FaultRule(
                model=spec.model,
                fault=self.fault,
                for_seconds=self.until - self.at,
                probability=self.probability,
            )
            for spec in self.models
        ]

    def describe(self) -> str:
        """``down: 503 on every call for 7 s`` — for the live output and the summary."""
        length = f"for {self.until - self.at:g} s"
        if self.fault is None:
            return f"{self.state} (no fault)"
        share = "every call" if self.probability >= 1 else f"{self.probability:.0%} of calls"
        return f"{self.state}: {describe_fault(self.fault)} on {share} {length}"


def describe_fault(fault: Fault) -> str:
    if fault.kind == "status":
        text = f"HTTP {fault.http_status}"
        if fault.retry_after is not None:
            text += f" (Retry-After {fault.retry_after:g} s)"
    elif fault.kind == "ok":
        text = f"{fault.delay:g} s extra latency"
    else:
        text = fault.kind.replace("_", " ")
    if fault.delay and fault.kind != "ok":
        text += f" after {fault.delay:g} s"
    return text


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    duration_s: float
    breaker: BreakerConfig
    probe_interval_s: float
    seed: int
    models: tuple[ModelSpec, ...]
    phases: tuple[Phase, ...]
    source: str = field(default="", compare=False)

    def fault_windows(self, key: ModelKey) -> list[tuple[float, float]]:
        """Merged [start, end) spans during which phases made ``key``'s calls fail."""
        spans = sorted(
            (p.at, p.until) for p in self.phases if p.injects_failures and any(m.key == key for m in p.models)
        )
        merged: list[tuple[float, float]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


# --- loading ------------------------------------------------------------------------------------------


def load_scenario(path: str | None) -> Scenario:
    """The scenario in ``path`` (a JSON file), or the built-in default one when ``path`` is None."""
    if path is None:
        text = resources.files(__package__).joinpath("scenarios", DEFAULT_SCENARIO).read_text("utf-8")
        source = f"built-in {DEFAULT_SCENARIO}"
    else:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario file {path!r}: {exc.strerror or exc}") from exc
        source = str(file)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{source}: not valid JSON: {exc}") from exc
    return parse_scenario(data, source=source)


def parse_scenario(data: Any, *, source: str = "<scenario>") -> Scenario:
    try:
        return _parse(data, source)
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {exc}") from None


def _parse(data: Any, source: str) -> Scenario:
    obj = _object(data, "the scenario")
    _only(
        obj,
        {"name", "description", "duration_s", "breaker", "probe_interval_s", "seed", "models", "phases"},
        "the scenario",
    )
    duration = _number(obj.get("duration_s", 30), "duration_s", positive=True)
    raw_models = obj.get("models")
    if not isinstance(raw_models, list) or not raw_models:
        raise ScenarioError("'models' must be a non-empty list")
    models = tuple(_model(m, i) for i, m in enumerate(raw_models))
    keys = [m.key for m in models]
    if len(set(keys)) != len(keys):
        raise ScenarioError("'models' lists the same provider/model/gateway twice")
    raw_phases = obj.get("phases", [])
    if not isinstance(raw_phases, list):
        raise ScenarioError("'phases' must be a list")
    phases = _phases(raw_phases, models, duration)
    return Scenario(
        name=str(obj.get("name", Path(source).stem)),
        description=str(obj.get("description", "")),
        duration_s=duration,
        breaker=_breaker(obj.get("breaker", {})),
        probe_interval_s=_number(obj.get("probe_interval_s", 5), "probe_interval_s", positive=True),
        seed=int(_number(obj.get("seed", 0), "seed")),
        models=models,
        phases=phases,
        source=source,
    )


def _model(data: Any, index: int) -> ModelSpec:
    where = f"models[{index}]"
    obj = _object(data, where)
    _only(
        obj,
        {"provider", "model", "gateway", "api", "client", "calls_per_s", "stream_every", "probe"},
        where,
    )
    for name in ("provider", "model"):
        if not isinstance(obj.get(name), str) or not obj[name].strip():
            raise ScenarioError(f"{where}.{name} must be a non-empty string")
    provider = obj["provider"].strip().lower()
    gateway = str(obj.get("gateway", DIRECT_GATEWAY)).strip().lower() or DIRECT_GATEWAY
    # Direct Anthropic traffic speaks the Messages API; anything else (gateways too) is OpenAI-compatible.
    default_api = "anthropic" if provider == "anthropic" and gateway == DIRECT_GATEWAY else "openai"
    api = obj.get("api", default_api)
    if api not in APIS:
        raise ScenarioError(f"{where}.api must be one of {list(APIS)}, got {api!r}")
    client = obj.get("client", "transport")
    if client not in CLIENTS:
        raise ScenarioError(f"{where}.client must be one of {list(CLIENTS)}, got {client!r}")
    if client == "monitor" and api != "openai":
        raise ScenarioError(f"{where}: client 'monitor' is only available with api 'openai'")
    stream_every = obj.get("stream_every", 3)
    if not isinstance(stream_every, int) or isinstance(stream_every, bool) or stream_every < 0:
        raise ScenarioError(f"{where}.stream_every must be an integer >= 0, got {stream_every!r}")
    probe = obj.get("probe", True)
    if not isinstance(probe, bool):
        raise ScenarioError(f"{where}.probe must be true or false, got {probe!r}")
    calls = _number(obj.get("calls_per_s", 1.0), f"{where}.calls_per_s")
    if calls > 20:
        raise ScenarioError(f"{where}.calls_per_s must be <= 20 (the demo stays light), got {calls!r}")
    return ModelSpec(
        provider=provider,
        model=obj["model"].strip(),
        gateway=gateway,
        api=api,
        client=client,
        calls_per_s=calls,
        stream_every=stream_every,
        probe=probe,
    )


def _phases(raw: list[Any], models: tuple[ModelSpec, ...], duration: float) -> tuple[Phase, ...]:
    parsed: list[tuple[float, float | None, str, str, tuple[ModelSpec, ...], Fault | None, float, Any]] = []
    for index, data in enumerate(raw):
        where = f"phases[{index}]"
        obj = _object(data, where)
        _only(obj, {"at", "for_s", "model", "provider", "state", "fault", "probability", "note"}, where)
        at = _number(obj.get("at"), f"{where}.at")
        length = obj.get("for_s")
        if length is not None:
            length = _number(length, f"{where}.for_s", positive=True)
        if ("model" in obj) == ("provider" in obj):
            raise ScenarioError(f"{where} needs exactly one of 'model' or 'provider'")
        if "model" in obj:
            target = str(obj["model"])
            affected = tuple(m for m in models if m.model == target)
            if not affected:
                raise ScenarioError(f"{where}.model {target!r} is not in 'models'")
        else:
            name = str(obj["provider"]).strip().lower()
            target = f"provider {name}"
            affected = tuple(
                m for m in models if m.key.provider == ModelKey(provider=name, model="-").provider
            )
            if not affected:
                raise ScenarioError(f"{where}.provider {name!r} has no model in 'models'")
        state = obj.get("state")
        if state not in STATES:
            raise ScenarioError(f"{where}.state must be one of {list(STATES)}, got {state!r}")
        default_fault, default_probability = STATES[state]
        fault_data = obj.get("fault", default_fault)
        fault = None
        if fault_data is not None:
            if not isinstance(fault_data, Mapping):
                raise ScenarioError(f"{where}.fault must be an object, got {fault_data!r}")
            try:
                fault = Fault.from_dict(fault_data)
            except (TypeError, ValueError) as exc:
                raise ScenarioError(f"{where}.fault: {exc}") from None
        probability = _number(obj.get("probability", default_probability), f"{where}.probability")
        if not 0 <= probability <= 1:
            raise ScenarioError(f"{where}.probability must be within [0, 1], got {probability!r}")
        note = obj.get("note")
        parsed.append((at, length, target, state, affected, fault, probability, note))

    phases: list[Phase] = []
    for i, (at, length, target, state, affected, fault, probability, note) in enumerate(parsed):
        # A phase lasts `for_s`, else until the next phase of the same target, else to the end.
        nxt = [p[0] for p in parsed[i + 1 :] if p[2] == target and p[0] > at]
        until = at + length if length is not None else (min(nxt) if nxt else max(duration, at))
        if until <= at:
            continue  # a zero-length `healthy` marker at the very end
        phases.append(
            Phase(
                at=at,
                until=until,
                state=state,
                target=target,
                models=affected,
                fault=fault,
                probability=probability,
                note=None if note is None else str(note),
            )
        )
    phases.sort(key=lambda p: p.at)
    return tuple(phases)


def _breaker(data: Any) -> BreakerConfig:
    obj = _object(data, "'breaker'")
    unknown = set(obj) - _BREAKER_FIELDS
    if unknown:
        raise ScenarioError(f"unknown 'breaker' field(s) {sorted(unknown)}; known: {sorted(_BREAKER_FIELDS)}")
    try:
        return BreakerConfig(**obj)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"'breaker': {exc}") from None


def _object(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ScenarioError(f"{where} must be a JSON object, got {type(data).__name__}")
    return data


def _only(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(obj) - allowed
    if unknown:
        raise ScenarioError(f"unknown field(s) {sorted(unknown)} in {where}; known: {sorted(allowed)}")


def _number(value: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{where} must be a number, got {value!r}")
    number = float(value)
    if math.isnan(number) or number < 0 or (positive and number == 0):
        raise ScenarioError(f"{where} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return number
