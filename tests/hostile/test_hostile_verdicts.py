"""Issue 14: the verdicts of instrument_client against a hostile server, with the real openai and anthropic
SDKs (httpx2), sync and async, streamed and not.

Every row of ``CASES`` runs the same calls twice against the same bytes: once through a plain SDK client,
once through one whose http client went through ``otel_model_health.instrument_client``. It asserts
(a) the caller saw the same thing both times (the returned object or the stream's events, or the same
exception type and text), and (b) the verdict the instrumentation recorded: the span's
``model_health.outcome`` and ``error.type`` (plain strings), token usage and ``gen_ai.response.model``
where the row says so, and the registry.
"""

from __future__ import annotations

import asyncio
import itertools
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

import anthropic
import openai
import pytest
from hostile_server import INPUT_TOKENS, OUTPUT_TOKENS, HostileServer
from kit import Telemetry, make_telemetry
from opentelemetry.sdk.trace import ReadableSpan

import otel_model_health

pytestmark = pytest.mark.integration  # the hostile server on 127.0.0.1

API_KEY: Final = "sk-test-hostile-0000000000"
TIMEOUT_S: Final = 10.0
MESSAGES: Final[Any] = [{"role": "user", "content": "Say hello"}]
DEFAULT_MODEL: Final = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-6"}
GATEWAY: Final = "self_hosted"

# error_type of a row whose expected error.type is the class name of the exception the caller got.
CALLER_EXCEPTION: Final = "<the caller's exception class name>"

Sdk = Literal["openai", "anthropic"]
Mode = Literal["sync", "async"]
RegistryCheck = Literal["last_outcome", "absent", "breaker_closed", "none"]

JSON_ONLY: Final = (False,)
STREAM_ONLY: Final = (True,)
BOTH: Final = (False, True)


@dataclass(frozen=True, slots=True)
class Case:
    """One row of the matrix: what the server sends, and the verdict the spec expects."""

    id: str
    server_case: str  # the path prefix: which bytes the server sends (hostile_server.CASES)
    streams: tuple[bool, ...]  # the stream modes the row applies to
    outcome: str  # expected model_health.outcome
    error_type: str | None  # expected error.type; None: absent
    usage: bool = False  # the span's token counts equal what the server sent
    clean_model: bool = False  # the span's gen_ai.response.model holds no control character
    registry: RegistryCheck = "last_outcome"
    model: str | None = None  # the requested model (default: DEFAULT_MODEL of the SDK)
    successes_before: int = 0  # successful calls of the same model made first (same client)
    repeat: int = 1  # calls of the case
    close_early: bool = False  # the caller closes the stream after its first event


CASES: Final = (
    # Content-Encoding on a complete stream: must be decoded before it is judged.
    Case("sse-gzip", "sse-gzip", STREAM_ONLY, "success", None, usage=True),
    Case("sse-deflate", "sse-deflate", STREAM_ONLY, "success", None, usage=True),
    Case("sse-br", "sse-br", STREAM_ONLY, "success", None, usage=True),
    Case("sse-zstd", "sse-zstd", STREAM_ONLY, "success", None, usage=True),
    # Content-Encoding on a complete JSON body.
    Case("json-gzip", "json-gzip", JSON_ONLY, "success", None, usage=True),
    Case("json-deflate", "json-deflate", JSON_ONLY, "success", None, usage=True),
    Case("json-br", "json-br", JSON_ONLY, "success", None, usage=True),
    Case("json-zstd", "json-zstd", JSON_ONLY, "success", None, usage=True),
    # Past our decoding budget the body is not read (bounded work), so no usage: judged by its status.
    Case("json-zstd-many-frames", "json-zstd-many-frames", JSON_ONLY, "success", None),
    # Bodies the caller cannot read.
    Case("corrupt-gzip", "corrupt-gzip", BOTH, "failure", "malformed_response"),
    Case("sse-invalid-utf8", "sse-invalid-utf8", STREAM_ONLY, "failure", "malformed_response"),
    Case("sse-huge-line", "sse-huge-line", STREAM_ONLY, "failure", CALLER_EXCEPTION),
    Case("nested-json", "nested-json", BOTH, "failure", "malformed_response"),
    # An error object inside a 200 JSON body.
    Case("error200-overloaded", "error200-overloaded", JSON_ONLY, "failure", "overloaded_error"),
    Case("error200-server-error", "error200-server-error", JSON_ONLY, "failure", "server_error"),
    Case("error200-code-502", "error200-code-502", JSON_ONLY, "failure", "502"),
    Case("error200-code-429", "error200-code-429", JSON_ONLY, "rate_limited", "429"),
    # 404 model_not_found: unknown model (never succeeded) vs a known model failing.
    Case(
        "404-never-seen",
        "model-not-found",
        BOTH,
        "unknown_model",
        "model_not_found",
        registry="absent",
        model="no-such-model-hostile",
    ),
    Case("404-seen-before", "model-not-found", BOTH, "failure", "model_not_found", successes_before=1),
    # Credentials / billing: not the model's fault, so its breaker must not open.
    Case(
        "auth-401",
        "auth-401",
        BOTH,
        "auth_error",
        "auth_error",
        registry="breaker_closed",
        successes_before=1,
        repeat=10,
    ),
    Case(
        "auth-403",
        "auth-403",
        BOTH,
        "auth_error",
        "auth_error",
        registry="breaker_closed",
        successes_before=1,
        repeat=10,
    ),
    Case("credits-402", "credits-402", BOTH, "auth_error", "auth_error", registry="none"),
    Case("quota-429", "quota-429", BOTH, "auth_error", "auth_error", registry="none"),
    # A response model id with "\n", an ANSI escape and a NUL.
    Case("evil-model-id", "evil-model", BOTH, "success", None, usage=True, clean_model=True),
    # Controls.
    Case("early-close", "ok", STREAM_ONLY, "neutral", "cancelled", registry="none", close_early=True),
    Case("control", "ok", BOTH, "success", None, usage=True),
)

SDKS: Final[tuple[Sdk, ...]] = ("openai", "anthropic")
MODES: Final[tuple[Mode, ...]] = ("sync", "async")


def _matrix() -> list[Any]:
    params = []
    for case, sdk, mode in itertools.product(CASES, SDKS, MODES):
        for stream in case.streams:
            label = f"{case.id}-{sdk}-{mode}-{'stream' if stream else 'json'}"
            params.append(pytest.param(case, sdk, mode, stream, id=label))
    return params


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile:
        yield hostile
    assert not hostile.errors, hostile.errors


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """In-memory OTel providers over a fresh registry (the root conftest's has a list recorder)."""
    t = make_telemetry(otel_model_health.HealthRegistry())
    yield t
    t.shutdown()


# --- calling the SDKs --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallResult:
    """What the caller saw: the returned object's dump (or the dumps of the stream events read before
    the end), and the exception it got, if any."""

    value: Any
    exc_type: type[BaseException] | None = None
    exc_text: str | None = None


def _request(sdk: Sdk, model: str, stream: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"model": model, "messages": MESSAGES, "stream": stream}
    if sdk == "anthropic":
        kwargs["max_tokens"] = 64
    elif stream:
        kwargs["stream_options"] = {"include_usage": True}
    return kwargs


def _base_url(server: HostileServer, sdk: Sdk, case: str) -> str:
    return server.openai_base_url(case) if sdk == "openai" else server.anthropic_base_url(case)


def _http_client(sdk: Sdk, mode: Mode, telemetry: Telemetry | None) -> Any:
    module: Any = openai if sdk == "openai" else anthropic
    client = module.DefaultHttpxClient() if mode == "sync" else module.DefaultAsyncHttpxClient()
    if telemetry is not None:
        otel_model_health.instrument_client(client, **telemetry.options())
    return client


def _sdk_client(sdk: Sdk, mode: Mode, base_url: str, http_client: Any) -> Any:
    options: dict[str, Any] = {
        "base_url": base_url,
        "api_key": API_KEY,
        "http_client": http_client,
        "max_retries": 0,  # one call = one attempt
        "timeout": TIMEOUT_S,
    }
    if sdk == "openai":
        return openai.OpenAI(**options) if mode == "sync" else openai.AsyncOpenAI(**options)
    options["open_telemetry"] = False  # the SDK's own spans are not what is under test
    return anthropic.Anthropic(**options) if mode == "sync" else anthropic.AsyncAnthropic(**options)


def _create(client: Any, sdk: Sdk) -> Callable[..., Any]:
    return client.chat.completions.create if sdk == "openai" else client.messages.create  # type: ignore[no-any-return]


def _call_sync(client: Any, sdk: Sdk, model: str, stream: bool, close_early: bool) -> CallResult:
    events: list[Any] = []
    try:
        result = _create(client, sdk)(**_request(sdk, model, stream))
        if not stream:
            return CallResult(result.model_dump())
        try:
            for event in result:
                events.append(event.model_dump())
                if close_early:
                    break
        finally:
            result.close()  # as `with` would: the SDKs leave a stream that raised open
    except Exception as exc:
        return CallResult(events, type(exc), str(exc))
    return CallResult(events)


async def _call_async(client: Any, sdk: Sdk, model: str, stream: bool, close_early: bool) -> CallResult:
    events: list[Any] = []
    try:
        result = await _create(client, sdk)(**_request(sdk, model, stream))
        if not stream:
            return CallResult(result.model_dump())
        try:
            async for event in result:
                events.append(event.model_dump())
                if close_early:
                    break
        finally:
            await result.close()
    except Exception as exc:
        return CallResult(events, type(exc), str(exc))
    return CallResult(events)


def _scenario_sync(
    server: HostileServer, case: Case, sdk: Sdk, stream: bool, model: str, telemetry: Telemetry | None
) -> list[CallResult]:
    http_client = _http_client(sdk, "sync", telemetry)
    try:
        ok = _sdk_client(sdk, "sync", _base_url(server, sdk, "ok"), http_client)
        hostile = _sdk_client(sdk, "sync", _base_url(server, sdk, case.server_case), http_client)
        results = [_call_sync(ok, sdk, model, stream, False) for _ in range(case.successes_before)]
        results += [_call_sync(hostile, sdk, model, stream, case.close_early) for _ in range(case.repeat)]
    finally:
        http_client.close()
    return results


async def _scenario_async(
    server: HostileServer, case: Case, sdk: Sdk, stream: bool, model: str, telemetry: Telemetry | None
) -> list[CallResult]:
    http_client = _http_client(sdk, "async", telemetry)
    try:
        ok = _sdk_client(sdk, "async", _base_url(server, sdk, "ok"), http_client)
        hostile = _sdk_client(sdk, "async", _base_url(server, sdk, case.server_case), http_client)
        results = [await _call_async(ok, sdk, model, stream, False) for _ in range(case.successes_before)]
        for _ in range(case.repeat):
            results.append(await _call_async(hostile, sdk, model, stream, case.close_early))
    finally:
        await http_client.aclose()
    return results


def _run(
    server: HostileServer,
    case: Case,
    sdk: Sdk,
    mode: Mode,
    stream: bool,
    model: str,
    telemetry: Telemetry | None,
) -> list[CallResult]:
    if mode == "sync":
        return _scenario_sync(server, case, sdk, stream, model, telemetry)
    return asyncio.run(_scenario_async(server, case, sdk, stream, model, telemetry))


# --- reading the verdict -----------------------------------------------------------------------------


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _verdict(span: ReadableSpan) -> tuple[Any, Any]:
    attrs = _attrs(span)
    return attrs.get("model_health.outcome"), attrs.get("error.type")


def _has_control_character(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


@pytest.mark.parametrize(("case", "sdk", "mode", "stream"), _matrix())
def test_hostile_verdict(
    server: HostileServer, telemetry: Telemetry, case: Case, sdk: Sdk, mode: Mode, stream: bool
) -> None:
    model = case.model or DEFAULT_MODEL[sdk]
    plain = _run(server, case, sdk, mode, stream, model, None)
    ours = _run(server, case, sdk, mode, stream, model, telemetry)

    # The test's own preconditions: the calls before the case succeeded, and the case is what it claims.
    for before in plain[: case.successes_before]:
        assert before.exc_type is None, f"the successful call before the case raised {before.exc_type}"
    if case.error_type == CALLER_EXCEPTION:
        assert plain[-1].exc_type is not None, "this row needs a call that raises"
    if case.close_early:
        assert len(plain[-1].value) == 1, "the caller closes after the first event"
    if case.outcome == "success":
        last = plain[-1]
        assert last.exc_type is None, f"the SDK could not read this success row: {last.exc_type}"
        assert not stream or len(last.value) > 2, "the SDK read the whole stream"

    problems: list[str] = []
    # (a) the caller's result is unchanged by the instrumentation.
    for index, (theirs, mine) in enumerate(zip(plain, ours, strict=True)):
        if mine != theirs:
            differ = " (the dumps differ)" if mine.value != theirs.value else ""
            problems.append(
                f"call {index}: the caller saw {_brief(mine)}, "
                f"without instrumentation {_brief(theirs)}{differ}"
            )

    # (b) the verdict: one span per call, named after the requested model.
    spans = telemetry.model_spans()
    if [s.name for s in spans] != [f"chat {model}"] * len(ours):
        problems.append(f"spans {[s.name for s in spans]} for {len(ours)} calls")
    for span in spans[: case.successes_before]:
        if _verdict(span) != ("success", None):
            problems.append(f"the call before the case: {_verdict(span)}")
    expected_error = case.error_type
    if expected_error == CALLER_EXCEPTION:
        caller = ours[-1].exc_type
        expected_error = caller.__name__ if caller is not None else "(no exception)"
    case_spans = spans[case.successes_before :]
    verdicts = {_verdict(span) for span in case_spans}
    if verdicts != {(case.outcome, expected_error)}:
        problems.append(f"verdict {sorted(verdicts, key=repr)} != expected {(case.outcome, expected_error)}")

    if case.usage and case_spans:
        attrs = _attrs(case_spans[-1])
        tokens = (attrs.get("gen_ai.usage.input_tokens"), attrs.get("gen_ai.usage.output_tokens"))
        if tokens != (INPUT_TOKENS, OUTPUT_TOKENS):
            problems.append(f"usage tokens {tokens} != sent {(INPUT_TOKENS, OUTPUT_TOKENS)}")
    if case.clean_model and case_spans:
        response_model = _attrs(case_spans[-1]).get("gen_ai.response.model")
        if not isinstance(response_model, str) or _has_control_character(response_model):
            problems.append(f"gen_ai.response.model {response_model!r}")

    state = telemetry.recorder.get(provider=sdk, model=model, gateway=GATEWAY)
    if case.registry == "absent" and state is not None:
        problems.append(f"registry holds {model} (last outcome {state.last_outcome})")
    elif case.registry == "last_outcome":
        seen = None if state is None else str(state.last_outcome)
        if seen != case.outcome:
            problems.append(f"registry last_outcome {seen} != {case.outcome}")
    elif case.registry == "breaker_closed":
        breaker = None if state is None else str(state.breaker_state)
        if breaker != "closed":
            problems.append(f"breaker {breaker} after {case.repeat} calls (expected closed)")

    assert not problems, " | ".join(problems)


def _brief(result: CallResult) -> str:
    value = result.value if isinstance(result.value, list) else [result.value]
    if result.exc_type is None:
        return f"{len(value)} object(s)"
    return f"{len(value)} object(s) then {result.exc_type.__name__}: {(result.exc_text or '')[:80]}"
