"""Health probes: ``HealthMonitor`` runs them on a schedule; built-in probes for OpenAI-compatible and
Anthropic APIs. See docs/probes.md."""

from .builtin import AnthropicProbe, OpenAIProbe, ProbeHTTPError
from .monitor import HealthMonitor, MonitorAwareProbe
from .runs import GuardedRecorder, MonitorRegistry, MonitorStats
from .selection import ProbeCandidate, Selection, Selector, probe_always, probe_due

__all__ = [
    "AnthropicProbe",
    "GuardedRecorder",
    "HealthMonitor",
    "MonitorAwareProbe",
    "MonitorRegistry",
    "MonitorStats",
    "OpenAIProbe",
    "ProbeCandidate",
    "ProbeHTTPError",
    "Selection",
    "Selector",
    "probe_always",
    "probe_due",
]
