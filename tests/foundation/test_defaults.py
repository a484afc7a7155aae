from __future__ import annotations

import pytest

from otel_model_health import defaults


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("SPAN_ONLY", True), ("span_and_event", True), ("NO_CONTENT", False), ("", False)],
)
def test_capture_content_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv(defaults.CAPTURE_CONTENT_ENV, value)
    defaults.set_defaults(registry=None, tracer_provider=None, meter_provider=None)  # as configure() does
    assert defaults.capture_content_enabled() is expected
    monkeypatch.setenv(defaults.CAPTURE_CONTENT_ENV, "false" if expected else "true")
    assert defaults.capture_content_enabled() is expected  # read once per configuration, not per call
    defaults.set_defaults(registry=None, tracer_provider=None, meter_provider=None)
    assert defaults.capture_content_enabled() is not expected


def test_an_explicit_setting_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(defaults.CAPTURE_CONTENT_ENV, "true")
    defaults.set_defaults(registry=None, tracer_provider=None, meter_provider=None, capture_content=False)
    try:
        assert defaults.capture_content_enabled() is False
    finally:
        defaults.set_defaults(registry=None, tracer_provider=None, meter_provider=None)
