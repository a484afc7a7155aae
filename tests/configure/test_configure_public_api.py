"""The package's public names: lazy (PEP 562), cheap to import, working without the optional extras."""

from __future__ import annotations

import inspect

import pytest
from otlp_receivers import run_child

import otel_model_health as omh


def test_every_public_name_resolves() -> None:
    for name in omh.__all__:
        assert getattr(omh, name) is not None, name
    assert set(omh.__all__) <= set(dir(omh))
    assert inspect.isfunction(omh.configure)
    assert omh.configure.__module__ == "otel_model_health.configure"


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        omh.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


BLOCKED = """
import sys
# Simulate an install without any extra: these imports now fail.
for name in ("httpx", "httpx2", "sentry_sdk", "opentelemetry.exporter", "grpc", "openai", "anthropic"):
    sys.modules[name] = None
import otel_model_health as omh
heavy = [m for m in sys.modules if m.split(".")[0] in ("httpx", "httpx2", "sentry_sdk", "wrapt")
         and sys.modules[m] is not None]
print("HEAVY", heavy)
print("LAZY", "HealthRegistry" in vars(omh), "monitor" in vars(omh))
print("REGISTRY", omh.HealthRegistry().max_keys)
import otel_model_health.configure  # the submodule must not shadow the function
print("CALLABLE", callable(omh.configure))
h = omh.configure()  # no endpoint, no Sentry: needs no extra
h.shutdown()
try:
    omh.configure(otlp_endpoint="http://127.0.0.1:9")
except ImportError as exc:
    print("OTLP", exc)
try:
    omh.configure(sentry_enabled=True, sentry_dsn="http://k@127.0.0.1:9/1")
except ImportError as exc:
    print("SENTRY", exc)
"""


@pytest.mark.integration
def test_import_and_configure_without_extras() -> None:
    out = run_child(BLOCKED, {}).stdout
    assert "HEAVY []" in out
    assert "LAZY False False" in out
    assert "REGISTRY 500" in out
    assert "CALLABLE True" in out
    assert "OTLP OTLP http/protobuf export of traces (set by option otlp_endpoint) needs" in out
    assert "pip install 'otel_model_health[otlp]'" in out
    assert "SENTRY SENTRY_ENABLED is true but" in out
    assert "otel_model_health[sentry]" in out
