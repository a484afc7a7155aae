"""Probe two models of a simulated provider with HealthMonitor, break one, and watch it recover.

Run: .venv/bin/python examples/health_probes.py
"""

from __future__ import annotations

import time

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.probes import AnthropicProbe, HealthMonitor, OpenAIProbe
from otel_model_health.testing import Fault, SimulatedProvider


def wait_for(condition: object, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.01)
    return False


def main() -> int:
    with SimulatedProvider() as provider:
        provider.script("gpt-4o", Fault.status(503), times=5)  # five failures, then it answers again
        registry = HealthRegistry()
        monitor = HealthMonitor(registry=registry, interval_s=0.05, jitter=0.1, timeout_s=2, select="always")
        monitor.add(OpenAIProbe("gpt-4o", base_url=provider.openai_base_url, api_key="sk-demo"))
        monitor.add(
            AnthropicProbe("claude-haiku-4-5", base_url=provider.anthropic_base_url, api_key="sk-demo")
        )
        with monitor:
            opened = wait_for(lambda: _breaker(registry) == "open")
            print("gpt-4o breaker after 5 x 503:", _breaker(registry))
            # Force the OPEN wait to end now instead of after 30 s, so the probes become half-open trials.
            registry.force_open(provider="openai", model="gpt-4o", duration_s=0.2)
            closed = wait_for(lambda: _breaker(registry) == "closed")
            print("gpt-4o breaker after the trials:", _breaker(registry))
        summary = registry.summary()
        print("summary:", summary["status"], summary["models"])
        print("probe runs:", monitor.stats.runs, "timeouts:", monitor.stats.timeouts)
        return 0 if opened and closed else 1


def _breaker(registry: HealthRegistry) -> str | None:
    state = registry.get(provider="openai", model="gpt-4o")
    return None if state is None else state.breaker_state.value


if __name__ == "__main__":
    raise SystemExit(main())
