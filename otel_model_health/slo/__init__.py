"""Service level objectives per model: definitions, burn rates and alerts (docs/slo.md)."""

from .definition import DEFAULT_ALERTS, SLO, BurnRateAlert, load_slos
from .status import SloStatus

__all__ = ["DEFAULT_ALERTS", "SLO", "BurnRateAlert", "SloStatus", "load_slos"]
