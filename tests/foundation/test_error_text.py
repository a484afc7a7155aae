"""Error texts without the request's content (instrument/error_text.py, with the front-ends' readers of
that content), and its use by the measurement."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_model_health import defaults
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.instrument.decorators import monitor
from otel_model_health.instrument.decorators.call_args import ArgSpec, from_arguments
from otel_model_health.instrument.error_text import CONTENT_REMOVED, RequestContent
from otel_model_health.instrument.transport.capture import MAX_REQUEST_BODY, from_body

PROMPT = "Summarise the quarterly report of the purple giraffe company for the board"
R = CONTENT_REMOVED


@pytest.mark.parametrize(
    ("texts", "message", "expected"),
    [
        # the whole prompt quoted (OpenAI's schema errors)
        ([PROMPT], f"'{PROMPT}' is not of type 'array'", f"'{R}' is not of type 'array'"),
        # its start, cut by the provider
        ([PROMPT], f"'{PROMPT[:30]}...' is too long", f"'{R}...' is too long"),
        # a run from its middle, with the message's own text around it
        ([PROMPT], "bad: 'report of the purple giraffe' here", f"bad: '{R}' here"),
        # a short prompt, whole: quoted or not
        (["hi there"], "'hi there' is not of type 'array'", f"'{R}' is not of type 'array'"),
        (["hi"], "'hi' is not valid; hi", f"'{R}' is not valid; hi"),
        # a prompt of repeated text, quoted in part
        (["ab" * 300], f"'{'ab' * 100}' is too long", f"'{R}' is too long"),
        # two messages, both quoted
        ([PROMPT, "And the second message"], f"[{PROMPT!r}, 'And the second message']", f"['{R}', '{R}']"),
        # nothing of the request in it: unchanged, words in common included
        ([PROMPT], "Service Unavailable", "Service Unavailable"),
        ([PROMPT], "The report could not go to the board", "The report could not go to the board"),
        ([], f"'{PROMPT}'", f"'{PROMPT}'"),
    ],
)
def test_clean_removes_the_request_content(texts: list[str], message: str, expected: str) -> None:
    assert RequestContent(texts).clean(message) == expected


def test_escaped_forms_are_removed_too() -> None:
    prompt = 'Line one of the "prompt"\nline two, with a café'
    content = RequestContent([prompt])
    as_json = json.dumps({"message": f"'{prompt}' is invalid"})  # a JSON error body quoted in a message
    as_repr = repr({"message": prompt})  # an SDK's Python repr of the body
    for message in (as_json, as_repr):
        cleaned = content.clean(message)
        assert "Line one" not in cleaned and "line two" not in cleaned and R in cleaned


def test_every_shared_run_of_twelve_characters_is_found() -> None:
    prompt = "".join(chr(ord("a") + (i * 7) % 26) for i in range(600))  # no repeats within 26
    content = RequestContent([prompt])
    for start in range(0, 580, 13):
        run = prompt[start : start + 12]
        assert content.clean(f"<{run}>") == f"<{R}>", start


def test_head_and_tail_of_a_long_text_are_indexed() -> None:
    prompt = "".join(f"word{i} " for i in range(10_000))  # ~88 KB
    content = RequestContent([prompt])
    assert content.clean(f"'{prompt[:200]}'") == f"'{R}'"
    assert content.clean(f"'{prompt[-200:]}'") == f"'{R}'"


def test_unreadable_content_keeps_no_message_text() -> None:
    content = RequestContent([], complete=False)
    assert content.clean("anything at all") == ""
    assert content.describe(ValueError("boom")) == "ValueError"


class FakeSDKError(Exception):
    """The shape of openai's / anthropic's APIStatusError: a status and the decoded JSON body."""

    def __init__(self, message: str, body: object, status_code: int = 400) -> None:
        super().__init__(message)
        self.body = body
        self.status_code = status_code


def test_an_sdk_error_is_cut_to_its_type_and_message() -> None:
    content = RequestContent([PROMPT])
    anthropic_body = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": f"'{PROMPT}' is bad"},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }
    exc = FakeSDKError(f"Error code: 400 - {anthropic_body}", anthropic_body)
    assert content.describe(exc) == f"FakeSDKError: invalid_request_error: '{R}' is bad"
    openai_body = {"message": "You exceeded your quota", "type": None, "code": "insufficient_quota"}
    assert content.exception_message(FakeSDKError("Error code: 429", openai_body)) == (
        "insufficient_quota: You exceeded your quota"
    )
    # No JSON body: the exception's own text, cleaned.
    assert content.describe(RuntimeError(f"failed on {PROMPT}")) == f"RuntimeError: failed on {R}"


def test_a_stack_trace_gets_every_chained_message_cleaned() -> None:
    content = RequestContent([PROMPT])
    try:
        try:
            raise KeyError(f"inner {PROMPT}")
        except KeyError as inner:
            raise FakeSDKError(f"Error code: 400 - '{PROMPT}'", {"error": {"message": PROMPT}}) from inner
    except FakeSDKError as exc:
        import traceback

        stacktrace = "".join(traceback.format_exception(exc))
        assert PROMPT in stacktrace
        cleaned = content.clean_stacktrace(exc, stacktrace)
    assert "purple giraffe" not in cleaned
    assert "KeyError" in cleaned and "FakeSDKError" in cleaned and "Traceback" in cleaned


BODIES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("openai chat", {"model": "gpt-4o", "messages": [
        {"role": "system", "content": "sys prompt"},
        {"role": "user", "content": [{"type": "text", "text": "user text"}]},
        {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{\"q\": 1}"}}]},
    ]}, ["sys prompt", "user text", '{"q": 1}']),
    ("anthropic", {"model": "claude", "system": [{"type": "text", "text": "be brief"}], "messages": [
        {"role": "user", "content": [{"type": "tool_result", "content": [{"type": "text", "text": "42"}]}]},
    ]}, ["be brief", "42"]),
    ("gemini", {"contents": [{"role": "user", "parts": [{"text": "gemini text"}]}],
                "systemInstruction": {"parts": [{"text": "gemini sys"}]}}, ["gemini text", "gemini sys"]),
    ("embeddings", {"model": "e", "input": ["one", "two"]}, ["one", "two"]),
    ("responses", {"model": "m", "instructions": "instr", "input": "responses input"},
     ["instr", "responses input"]),
    ("completions", {"model": "m", "prompt": ["p1", "p2"]}, ["p1", "p2"]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "texts"), BODIES, ids=[b[0] for b in BODIES])
def test_from_body_finds_the_texts(name: str, body: dict[str, Any], texts: list[str]) -> None:
    content = from_body(json.dumps(body).encode())
    for text in texts:
        assert content.clean(f"<<'{text}'>>") == f"<<'{R}'>>", text
    # Field values that are not content stay: the model name, roles, block types.
    assert content.clean("'gpt-4o' 'user' 'text' 'm'") == "'gpt-4o' 'user' 'text' 'm'"


def test_from_body_of_an_unusual_body() -> None:
    assert from_body(None).clean("x") == "x"
    assert from_body(b"plain text prompt here").clean("got plain text prompt here!") == f"got {R}!"
    too_large = b'{"messages": "' + b"x" * MAX_REQUEST_BODY + b'"}'
    assert from_body(too_large).clean("Request too large") == ""


def call_with(
    model: str,
    messages: Any = None,
    *,
    prompt: str | None = None,
    system: Any = None,
    temperature: float = 1.0,
) -> None:
    """A signature like an SDK method's."""


def test_from_arguments_reads_the_content_arguments() -> None:
    spec = ArgSpec(call_with)
    content = from_arguments(
        spec, None, ("gpt-4o", [{"role": "user", "content": "positional message"}]),
        {"prompt": "keyword prompt", "system": "system words"},
    )  # fmt: skip
    assert content is not None
    for text in ("positional message", "keyword prompt", "system words"):
        assert content.clean(f"'{text}'") == f"'{R}'"
    assert content.clean("'gpt-4o'") == "'gpt-4o'"


def test_from_arguments_reads_sdk_objects() -> None:
    class Part:
        def __init__(self, text: str) -> None:
            self.text = text

    class Content:
        def __init__(self, text: str) -> None:
            self.role = "user"
            self.parts = [Part(text)]

    content = from_arguments(ArgSpec(call_with), None, ("m", [Content("object text")]), {})
    assert content is not None and content.clean("'object text'") == f"'{R}'"


def test_from_arguments_of_a_deeply_nested_value() -> None:
    nested: Any = {"content": "deep down text"}
    for _ in range(500):
        nested = [nested]
    content = from_arguments(ArgSpec(call_with), None, ("m", [{"content": "top text"}, nested]), {})
    assert content is not None and content.clean("'top text'") == f"'{R}'"  # walked to a bounded depth


def test_from_arguments_with_capture_on_removes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "_capture_content", True)
    assert from_arguments(ArgSpec(call_with), None, ("m", "x"), {}) is None


# -- through the measurement --------------------------------------------------------------------------


@pytest.fixture
def providers() -> Iterator[tuple[TracerProvider, MeterProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    yield tracer_provider, meter_provider, exporter
    tracer_provider.shutdown()
    meter_provider.shutdown()


def _failing_call(providers: Any, registry: HealthRegistry) -> Any:
    tracer_provider, meter_provider, _ = providers

    @monitor(registry=registry, tracer_provider=tracer_provider, meter_provider=meter_provider)
    def create(model: str, messages: Any) -> None:
        body = {"error": {"type": "invalid_request_error", "message": f"'{PROMPT}' is not of type 'array'"}}
        raise FakeSDKError(f"Error code: 400 - {body}", body, status_code=503)

    return create


def test_a_decorated_call_leaves_no_prompt_in_its_error_texts(providers: Any) -> None:
    registry = HealthRegistry()
    create = _failing_call(providers, registry)
    with pytest.raises(FakeSDKError) as raised:
        create(model="gpt-4o", messages=[{"role": "user", "content": PROMPT}])
    assert PROMPT in str(raised.value)  # the caller's exception is untouched

    (span,) = providers[2].get_finished_spans()
    assert span.status.description == f"FakeSDKError: invalid_request_error: '{R}' is not of type 'array'"
    (event,) = span.events
    attributes = dict(event.attributes or {})
    assert attributes["exception.message"] == f"invalid_request_error: '{R}' is not of type 'array'"
    assert "giraffe" not in str(attributes["exception.stacktrace"])
    assert "FakeSDKError" in str(attributes["exception.stacktrace"])
    (state,) = registry.snapshot()
    assert state.last_error is not None and "giraffe" not in (state.last_error.message or "")


def test_with_capture_on_the_message_is_kept(providers: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "_capture_content", True)
    create = _failing_call(providers, HealthRegistry())
    with pytest.raises(FakeSDKError):
        create(model="gpt-4o", messages=[{"role": "user", "content": PROMPT}])
    (span,) = providers[2].get_finished_spans()
    assert PROMPT in (span.status.description or "")
