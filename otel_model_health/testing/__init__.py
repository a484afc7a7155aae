"""A simulated LLM provider for tests and the demo: OpenAI/Anthropic/Azure/Gemini wire formats on a loopback
port, with faults scripted per model. Standard library only. The library itself never imports this package.

    with SimulatedProvider() as provider:
        provider.script("gpt-4o", Fault.status(503), times=3)
        client = openai.OpenAI(base_url=provider.openai_base_url, api_key="sk-test")
"""

from otel_model_health.testing.clock import ManualClock
from otel_model_health.testing.faults import ANY_MODEL, Fault, FaultPlan, FaultRule
from otel_model_health.testing.handler import CHUNK_DELAY_HEADER, CHUNKS_HEADER
from otel_model_health.testing.requestlog import RequestRecord
from otel_model_health.testing.scenarios import SCENARIOS, resolve_scenario
from otel_model_health.testing.server import DEFAULT_MODELS, SimulatedProvider

__all__ = [
    "ANY_MODEL",
    "CHUNKS_HEADER",
    "CHUNK_DELAY_HEADER",
    "DEFAULT_MODELS",
    "SCENARIOS",
    "Fault",
    "FaultPlan",
    "FaultRule",
    "ManualClock",
    "RequestRecord",
    "SimulatedProvider",
    "resolve_scenario",
]
