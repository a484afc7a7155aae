"""The demo scenario file: which models get traffic, and timed phases that make them misbehave.

A scenario is JSON (format in docs/demo-scenarios.md). Phases are mapped onto the simulated provider's
fault rules: a phase becomes one ``FaultRule`` per affected model, installed when the phase starts, with
``for_seconds`` set to the phase's length, so the provider itself ends the fault on time.

Validation happens once, at load, with messages that name the offending field, because the file is
written by hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Final

from ..health.types import BreakerConfig
from ..keys import DIRECT_GATEWAY, ModelKey
from ..slo.definition import SLO, coerce_slos
from ..testing.faults import Fault, FaultRule
from . import strict_json
from .arguments import MAX_SECONDS
from .text import shown

DEFAULT_SCENARIO: Final = "default.json"
# Bounds that keep a hand-written (or hostile) file from exhausting threads, memory or the platform's
# timeouts; the built-in scenario is far below each.
MAX_FILE_BYTES: Final = 1024 * 1024
MAX_MODELS: Final = 20
MAX_PHASES: Final = 200
MIN_CALLS_PER_S: Final = 0.01  # slower would mean waits of hours between two calls
MAX_CALLS_PER_S: Final = 20  # the demo stays light
MAX_COUNT: Final = 10_000  # integer settings: breaker windows and trials, stream_every, after_chunks
MAX_FAULT_DELAY_S: Final = 30  # the SDK clients give up after 5 s anyway

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
_BREAKER_DEFAULTS: Final = {f.name: f.default for f in fields(BreakerConfig)}


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
    slos: tuple[SLO, ...] = ()  # docs/slo.md; a demo uses alert windows in seconds

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
        data = resources.files(__package__).joinpath("scenarios", DEFAULT_SCENARIO).read_bytes()
        source = f"built-in {DEFAULT_SCENARIO}"
    else:
        try:
            with open(path, "rb") as file:  # at most one byte too many: never a whole /dev/zero
                data = file.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario file {path!r}: {exc.strerror or exc}") from exc
        source = str(path)
    try:
        document = strict_json.loads(data, max_bytes=MAX_FILE_BYTES)
    except strict_json.JSONInputError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    return parse_scenario(document, source=source)


def parse_scenario(data: Any, *, source: str = "<scenario>") -> Scenario:
    try:
        return _parse(data, source)
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {exc}") from None


def _parse(data: Any, source: str) -> Scenario:
    obj = _object(data, "the scenario")
    _only(
        obj,
        {
            "name",
            "description",
            "duration_s",
            "breaker",
            "probe_interval_s",
            "seed",
            "models",
            "phases",
            "slos",
        },
        "the scenario",
    )
    duration = _number(obj.get("duration_s", 30), "duration_s", positive=True)
    raw_models = obj.get("models")
    if not isinstance(raw_models, list) or not 1 <= len(raw_models) <= MAX_MODELS:
        raise ScenarioError(f"'models' must be a list of 1 to {MAX_MODELS} models")
    models = tuple(_model(m, i) for i, m in enumerate(raw_models))
    keys = [m.key for m in models]
    if len(set(keys)) != len(keys):
        raise ScenarioError("'models' lists the same provider/model/gateway twice")
    raw_phases = obj.get("phases", [])
    if not isinstance(raw_phases, list) or len(raw_phases) > MAX_PHASES:
        raise ScenarioError(f"'phases' must be a list of at most {MAX_PHASES} phases")
    phases = _phases(raw_phases, models, duration)
    return Scenario(
        name=_text(obj.get("name", Path(source).stem), "name"),
        description=_text(obj.get("description", ""), "description"),
        duration_s=duration,
        breaker=_breaker(obj.get("breaker", {})),
        probe_interval_s=_number(obj.get("probe_interval_s", 5), "probe_interval_s", positive=True),
        seed=_integer(obj.get("seed", 0), "seed", maximum=2**63 - 1),
        models=models,
        phases=phases,
        source=source,
        slos=_slos(obj.get("slos", [])),
    )


def _slos(data: Any) -> tuple[SLO, ...]:
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ScenarioError("'slos' must be a list of SLO objects (docs/slo.md)")
    try:
        return coerce_slos(data)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"slos: {exc}") from None


def _model(data: Any, index: int) -> ModelSpec:
    where = f"models[{index}]"
    obj = _object(data, where)
    _only(
        obj,
        {"provider", "model", "gateway", "api", "client", "calls_per_s", "stream_every", "probe"},
        where,
    )
    for name in ("provider", "model"):
        if not _text(obj.get(name), f"{where}.{name}").strip():
            raise ScenarioError(f"{where}.{name} must be a non-empty string")
    provider = obj["provider"].strip().lower()
    gateway = _text(obj.get("gateway", DIRECT_GATEWAY), f"{where}.gateway").strip().lower() or DIRECT_GATEWAY
    # Direct Anthropic traffic speaks the Messages API; anything else (gateways too) is OpenAI-compatible.
    default_api = "anthropic" if provider == "anthropic" and gateway == DIRECT_GATEWAY else "openai"
    api = obj.get("api", default_api)
    if api not in APIS:
        raise ScenarioError(f"{where}.api must be one of {list(APIS)}, got {shown(api)}")
    client = obj.get("client", "transport")
    if client not in CLIENTS:
        raise ScenarioError(f"{where}.client must be one of {list(CLIENTS)}, got {shown(client)}")
    if client == "monitor" and api != "openai":
        raise ScenarioError(f"{where}: client 'monitor' is only available with api 'openai'")
    stream_every = _integer(obj.get("stream_every", 3), f"{where}.stream_every")
    probe = obj.get("probe", True)
    if not isinstance(probe, bool):
        raise ScenarioError(f"{where}.probe must be true or false, got {shown(probe)}")
    calls = _number(obj.get("calls_per_s", 1.0), f"{where}.calls_per_s", maximum=MAX_CALLS_PER_S)
    if 0 < calls < MIN_CALLS_PER_S:
        raise ScenarioError(f"{where}.calls_per_s must be 0 or >= {MIN_CALLS_PER_S}, got {shown(calls)}")
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
            target = _text(obj["model"], f"{where}.model")
            affected = tuple(m for m in models if m.model == target)
            if not affected:
                raise ScenarioError(f"{where}.model {shown(target)} is not in 'models'")
        else:
            name = _text(obj["provider"], f"{where}.provider").strip().lower()
            target = f"provider {name}"
            affected = tuple(
                m for m in models if m.key.provider == ModelKey(provider=name, model="-").provider
            )
            if not affected:
                raise ScenarioError(f"{where}.provider {shown(name)} has no model in 'models'")
        state = obj.get("state")
        if not isinstance(state, str) or state not in STATES:
            raise ScenarioError(f"{where}.state must be one of {list(STATES)}, got {shown(state)}")
        default_fault, default_probability = STATES[state]
        fault_data = obj.get("fault", default_fault)
        fault = None if fault_data is None else _fault(fault_data, f"{where}.fault")
        probability = _number(obj.get("probability", default_probability), f"{where}.probability", maximum=1)
        note = obj.get("note")
        if note is not None:
            _text(note, f"{where}.note")
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
                note=note,
            )
        )
    phases.sort(key=lambda p: p.at)
    return tuple(phases)


def _fault(data: Any, where: str) -> Fault:
    obj = _object(data, where)
    for name in ("kind", "error_type", "message"):
        if obj.get(name) is not None:
            _text(obj[name], f"{where}.{name}")
    if obj.get("http_status") is not None:
        status = _integer(obj["http_status"], f"{where}.http_status", maximum=599)
        if status < 400:
            raise ScenarioError(f"{where}.http_status must be a 4xx or 5xx code, got {status}")
    if obj.get("after_chunks") is not None:
        _integer(obj["after_chunks"], f"{where}.after_chunks")
    if "delay" in obj:
        _number(obj["delay"], f"{where}.delay", maximum=MAX_FAULT_DELAY_S)
    if obj.get("retry_after") is not None:
        _number(obj["retry_after"], f"{where}.retry_after")
    try:
        return Fault.from_dict(obj)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _breaker(data: Any) -> BreakerConfig:
    obj = _object(data, "'breaker'")
    unknown = set(obj) - set(_BREAKER_DEFAULTS)
    if unknown:
        raise ScenarioError(
            f"unknown 'breaker' field(s) {sorted(unknown)}; known: {sorted(_BREAKER_DEFAULTS)}"
        )
    for name, value in obj.items():
        # Each field's type is its default's: whole numbers, seconds / ratios, or a word.
        default, where = _BREAKER_DEFAULTS[name], f"breaker.{name}"
        if isinstance(default, str):
            _text(value, where)
        elif isinstance(default, int):
            _integer(value, where)
        else:
            _number(value, where)
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


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ScenarioError(f"{where} must be a string, got {shown(value)}")
    return value


def _number(value: Any, where: str, *, positive: bool = False, maximum: float = MAX_SECONDS) -> float:
    """A finite number within [0, maximum] (or (0, maximum] when ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{where} must be a number, got {shown(value)}")
    low = "> 0" if positive else ">= 0"
    if not (math.isfinite(value) and 0 <= value <= maximum) or (positive and value == 0):
        raise ScenarioError(f"{where} must be {low} and <= {maximum}, got {shown(value)}")
    return float(value)


def _integer(value: Any, where: str, *, maximum: int = MAX_COUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ScenarioError(f"{where} must be an integer from 0 to {maximum}, got {shown(value)}")
    return value
