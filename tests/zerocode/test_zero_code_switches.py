"""Zero-code off switches, start-up errors, the example, and no double wrapping: each a short
``opentelemetry-instrument`` run against the simulated provider, spans read from the console exporter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from configure.otlp_receivers import REPO
from instrumented import instrumented_env, run

from otel_model_health.testing import Fault, SimulatedProvider

pytestmark = pytest.mark.integration

CONSOLE = {"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none"}


def _console_spans(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects the console span exporter printed (one per span, indented), from stdout."""
    decoder = json.JSONDecoder()
    spans, index = [], stdout.find("{")
    while index != -1:
        try:
            value, end = decoder.raw_decode(stdout, index)
        except ValueError:
            index = stdout.find("{", index + 1)
            continue
        if isinstance(value, dict) and "attributes" in value and "context" in value:
            spans.append(value)
        index = stdout.find("{", end)
    return spans


def _ours(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in spans if "model_health.outcome" in s["attributes"]]


def test_the_example_is_measured_without_code(tmp_path: Path) -> None:
    with SimulatedProvider() as provider:
        env = instrumented_env(
            tmp_path,
            {
                **CONSOLE,
                "OPENAI_BASE_URL": provider.openai_base_url,
                "OPENAI_API_KEY": "sk-test",
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only",
            },
        )
        result = run([str(REPO / "examples" / "zero_code_app.py")], env)
    assert result.returncode == 0, result.stderr
    assert "answer: The simulated provider" in result.stdout
    assert "models listed:" in result.stdout
    assert (
        "ignored" not in result.stderr
    )  # OTEL_TRACES_EXPORTER=console is the distro's, not ours to warn about
    ours = _ours(_console_spans(result.stdout))
    assert [s["attributes"]["gen_ai.operation.name"] for s in ours] == ["chat", "embeddings"]
    assert {s["attributes"]["gen_ai.provider.name"] for s in ours} == {"openai"}
    assert all(s["attributes"]["model_health.outcome"] == "success" for s in ours)
    # SPAN_ONLY (any case) puts the content on our span; the default run of test_zero_code has none.
    assert "Name three colours." in ours[0]["attributes"]["gen_ai.input.messages"]


DOUBLE = """
import openai, otel_model_health
from otel_model_health import instrument_client
client = openai.OpenAI(base_url={base!r}, api_key="sk-test", max_retries=1)
instrument_client(client._client, gateway="explicit")  # already wrapped by the instrumentor: replaced
instrument_client(client._client)                      # and never wrapped twice
client.chat.completions.create(model="gpt-4o", messages=[{{"role": "user", "content": "hi"}}])
state = otel_model_health.current().registry.get(provider="openai", model="gpt-4o", gateway="explicit")
print("CALLS", state.calls_in_window, state.failures_in_window)
"""


def test_explicit_instrument_client_under_the_instrumentor_is_one_span_per_attempt(tmp_path: Path) -> None:
    with SimulatedProvider() as provider:
        provider.script("gpt-4o", Fault.status(503), times=1)  # one retry: two attempts
        # Under the latest conventions the official OpenAI instrumentation's span names gen_ai.provider.name;
        # its span encloses both attempts and is not counted again.
        env = instrumented_env(
            tmp_path, {**CONSOLE, "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental"}
        )
        result = run(["-c", DOUBLE.format(base=provider.openai_base_url)], env)
        attempts = len(provider.requests_for("gpt-4o"))
    assert result.returncode == 0, result.stderr
    assert attempts == 2
    assert "CALLS 2 1" in result.stdout
    ours = _ours(_console_spans(result.stdout))
    assert [s["attributes"]["model_health.outcome"] for s in ours] == ["failure", "success"]
    assert {s["attributes"]["model_health.gateway"] for s in ours} == {"explicit"}
    spans = _console_spans(result.stdout)
    parent_ids = {s["parent_id"] for s in ours}
    parents = [s for s in spans if s["context"]["span_id"] in parent_ids]
    assert len(parent_ids) == 1 and len(parents) == 1, parent_ids
    assert parents[0]["attributes"]["gen_ai.provider.name"] == "openai"
    assert "gen_ai.system" not in parents[0]["attributes"]


PROBE = """
import openai, otel_model_health
client = openai.OpenAI(base_url={base!r}, api_key="sk-test", max_retries=0)
client.chat.completions.create(model="gpt-4o", messages=[{{"role": "user", "content": "hi"}}])
print("TRANSPORT", type(client._client._transport).__name__, "HANDLE", otel_model_health.current())
"""


def test_disabled_instrumentations_turns_it_off(tmp_path: Path) -> None:
    with SimulatedProvider() as provider:
        env = instrumented_env(tmp_path, {**CONSOLE, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "model_health"})
        result = run(["-c", PROBE.format(base=provider.openai_base_url)], env)
        enabled = run(
            ["-c", PROBE.format(base=provider.openai_base_url)], instrumented_env(tmp_path, CONSOLE)
        )
    assert result.returncode == 0, result.stderr
    assert "TRANSPORT HTTPTransport HANDLE None" in result.stdout
    assert not _ours(_console_spans(result.stdout))
    # The same program with the instrumentor on: the control that makes the assertions above mean something.
    assert enabled.returncode == 0, enabled.stderr
    assert "TRANSPORT ModelHealthTransport HANDLE ModelHealth(" in enabled.stdout
    assert len(_ours(_console_spans(enabled.stdout))) == 1


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MODEL_HEALTH_HTTP_PORT", "http"),
        ("MODEL_HEALTH_BREAKER", "open_wait=5"),
        ("SENTRY_ENABLED", "maybe"),
    ],
)
def test_a_bad_value_fails_start_up_naming_it(tmp_path: Path, variable: str, value: str) -> None:
    env = instrumented_env(tmp_path, {**CONSOLE, variable: value})
    result = run(["-c", "print('APP RAN')"], env)
    assert result.returncode == 1
    assert "APP RAN" not in result.stdout
    assert "otel_model_health: start-up stopped" in result.stderr and variable in result.stderr, result.stderr
