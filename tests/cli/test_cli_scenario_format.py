"""The scenario file format: the built-in default, phase timing, fault-rule mapping, validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from otel_model_health.cli.scenario import ScenarioError, load_scenario, parse_scenario
from otel_model_health.keys import ModelKey
from otel_model_health.testing import Fault

DOCS = Path(__file__).resolve().parents[2] / "docs" / "demo-scenarios.md"


def _scenario(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "duration_s": 20,
        "models": [
            {"provider": "openai", "model": "gpt-4o"},
            {"provider": "anthropic", "model": "claude-a"},
            {"provider": "anthropic", "model": "claude-b", "calls_per_s": 0},
            {"provider": "meta", "model": "meta-llama/x", "gateway": "OpenRouter"},
        ],
        "phases": [],
    }
    data.update(overrides)
    return data


def test_default_scenario_has_every_kind_of_incident() -> None:
    scenario = load_scenario(None)
    assert scenario.duration_s == 30
    assert scenario.breaker.open_wait_s == 3
    assert {m.provider for m in scenario.models} >= {"openai", "anthropic"}
    assert any(m.gateway != "direct" for m in scenario.models)
    assert any(m.client == "monitor" for m in scenario.models)
    states = {p.state for p in scenario.phases}
    assert {"down", "degrading", "recovering", "healthy", "rate_limited"} <= states
    assert any(p.target == "provider anthropic" for p in scenario.phases)
    assert all(p.until <= scenario.duration_s for p in scenario.phases)


def test_defaults_of_a_model() -> None:
    scenario = parse_scenario(_scenario())
    by_model = {m.model: m for m in scenario.models}
    assert by_model["claude-a"].api == "anthropic"  # direct Anthropic speaks the Messages API
    assert by_model["meta-llama/x"].api == "openai"  # a gateway is OpenAI-compatible
    assert by_model["meta-llama/x"].key == ModelKey(
        provider="meta", model="meta-llama/x", gateway="openrouter"
    )
    assert by_model["gpt-4o"].calls_per_s == 1.0


def test_a_phase_lasts_until_the_next_phase_of_its_target_or_the_end() -> None:
    scenario = parse_scenario(
        _scenario(
            phases=[
                {"at": 2, "model": "gpt-4o", "state": "degrading"},
                {"at": 5, "model": "gpt-4o", "state": "down"},
                {"at": 9, "model": "gpt-4o", "state": "healthy"},
                {"at": 3, "for_s": 4, "provider": "anthropic", "state": "down"},
            ]
        )
    )
    spans = [(p.target, p.state, p.at, p.until) for p in scenario.phases]
    assert spans == [
        ("gpt-4o", "degrading", 2, 5),
        ("provider anthropic", "down", 3, 7),
        ("gpt-4o", "down", 5, 9),
        ("gpt-4o", "healthy", 9, 20),
    ]
    key = ModelKey(provider="openai", model="gpt-4o")
    assert scenario.fault_windows(key) == [(2, 9)]  # degrading and down merge; healthy adds none


def test_phases_map_onto_fault_rules() -> None:
    scenario = parse_scenario(
        _scenario(
            phases=[
                {
                    "at": 3,
                    "for_s": 4,
                    "provider": "anthropic",
                    "state": "down",
                    "fault": {"kind": "status", "http_status": 529},
                },
                {"at": 8, "model": "gpt-4o", "state": "rate_limited", "probability": 0.5},
                {"at": 9, "model": "meta-llama/x", "state": "healthy"},
            ]
        )
    )
    outage, storm, healthy = scenario.phases
    rules = outage.rules()
    assert [(r.model, r.for_seconds, r.probability) for r in rules] == [
        ("claude-a", 4, 1.0),
        ("claude-b", 4, 1.0),
    ]
    assert rules[0].fault == Fault.status(529)
    (rule,) = storm.rules()
    assert rule.fault == Fault.status(429, retry_after=1)
    assert (rule.probability, rule.for_seconds) == (0.5, 12)
    assert not storm.injects_failures  # a rate limit is not a failure
    assert healthy.rules() == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": []}, "'models' must be a list of 1 to 20 models"),
        (
            {"phases": [{"at": 1, "model": "nope", "state": "down"}]},
            "phases[0].model 'nope' is not in 'models'",
        ),
        ({"phases": [{"at": 1, "state": "down"}]}, "phases[0] needs exactly one of 'model' or 'provider'"),
        ({"phases": [{"at": -1, "model": "gpt-4o", "state": "down"}]}, "phases[0].at must be >= 0"),
        (
            {"phases": [{"at": 1, "model": "gpt-4o", "state": "down", "fault": {"kind": "boom"}}]},
            "phases[0].fault: unknown fault kind",
        ),
        (
            {"phases": [{"at": 1, "model": "gpt-4o", "state": "down", "probability": 2}]},
            "phases[0].probability must be >= 0 and <= 1",
        ),
        ({"breaker": {"open_wait": 3}}, "unknown 'breaker' field(s) ['open_wait']"),
        ({"breaker": {"open_wait_s": 5, "max_open_wait_s": 1}}, "'breaker': BreakerConfig.max_open_wait_s"),
        ({"extra": 1}, "unknown field(s) ['extra'] in the scenario"),
    ],
)
def test_errors_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_scenario(**change), source="my.json")
    assert str(info.value).startswith("my.json: ")
    assert message in str(info.value)


def test_a_model_entry_must_be_usable() -> None:
    bad = _scenario(models=[{"provider": "anthropic", "model": "c", "client": "monitor"}])
    with pytest.raises(
        ScenarioError, match=r"models\[0\]: client 'monitor' is only available with api 'openai'"
    ):
        parse_scenario(bad)


def test_the_full_example_in_the_docs_is_valid(tmp_path: Path) -> None:
    text = DOCS.read_text(encoding="utf-8")
    example = text.split("```json\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.json"
    path.write_text(example, encoding="utf-8")
    scenario = load_scenario(str(path))
    assert scenario.phases
    assert json.loads(example)["name"] == scenario.name
