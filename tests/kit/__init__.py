"""The shared test kit: in-memory OTel providers (``Telemetry``) and a list-collecting health recorder
(``ListRecorder``); ``kit.servers`` serves an ASGI app, ``kit.guard`` is the integration guard.

Importable as ``kit`` from every test directory (pyproject's pytest ``pythonpath`` puts tests/ on
sys.path). The fixtures built from it (``telemetry``, ``sim``) are in tests/conftest.py; the manual
clock is the library's own, ``otel_model_health.testing.ManualClock``.
"""

from .recorder import ListRecorder
from .telemetry import API_KEY, Telemetry, make_telemetry

__all__ = ["API_KEY", "ListRecorder", "Telemetry", "make_telemetry"]
