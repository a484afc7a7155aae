"""Named fault scenarios for the CLI and the demo, as JSON-able rule lists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from otel_model_health.testing.faults import FaultRule, rules_from_json

SCENARIOS: Final[dict[str, list[dict[str, Any]]]] = {
    # Everything answers normally.
    "healthy": [],
    # One model fails a third of its calls with 503 (seeded, so runs are reproducible).
    "flaky": [{"model": "gpt-4o-mini", "fault": {"kind": "status", "http_status": 503}, "probability": 0.33}],
    # gpt-4o is down for 30 s, then recovers: the breaker opens, half-opens, closes.
    "outage-recovery": [
        {"model": "gpt-4o", "fault": {"kind": "status", "http_status": 503}, "for_seconds": 30}
    ],
    # Every OpenAI-format model fails: a provider outage.
    "openai-outage": [{"model": "*", "api": "openai", "fault": {"kind": "status", "http_status": 500}}],
    # Anthropic overloaded: 529s and overloaded_error events inside streams.
    "anthropic-overloaded": [
        {
            "model": "*",
            "api": "anthropic",
            "fault": {"kind": "stream_error", "after_chunks": 2},
            "probability": 0.5,
        },
        {"model": "*", "api": "anthropic", "fault": {"kind": "status", "http_status": 529}},
    ],
    # A rate-limited model: 429 with Retry-After 2 s on half its calls.
    "rate-limited": [
        {
            "model": "gpt-4o-mini",
            "fault": {"kind": "status", "http_status": 429, "retry_after": 2},
            "probability": 0.5,
        }
    ],
    # Slow and broken streams on one model.
    "bad-streams": [
        {"model": "gpt-4o", "fault": {"kind": "truncate"}, "probability": 0.3},
        {"model": "gpt-4o", "fault": {"kind": "reset", "after_chunks": 2}, "probability": 0.3},
        {"model": "gpt-4o", "fault": {"kind": "ok", "delay": 0.5}},
    ],
}


def resolve_scenario(spec: str) -> list[FaultRule]:
    """A scenario by name (:data:`SCENARIOS`), from a JSON file path, or from an inline JSON string."""
    if spec in SCENARIOS:
        return rules_from_json(SCENARIOS[spec])
    text = spec
    if not spec.lstrip().startswith(("[", "{")):
        path = Path(spec)
        if not path.is_file():
            raise ValueError(
                f"unknown scenario {spec!r}: not a name ({', '.join(SCENARIOS)}), a file or JSON"
            )
        text = path.read_text(encoding="utf-8")
    return rules_from_json(json.loads(text))
