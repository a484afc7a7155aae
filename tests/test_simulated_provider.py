"""The simulated provider itself: lifecycle, wire formats (read with a plain httpx client), the fault plan,
the request log, scenarios and the CLI."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from otel_model_health.testing import (
    SCENARIOS,
    Fault,
    FaultRule,
    ManualClock,
    SimulatedProvider,
    resolve_scenario,
)
from otel_model_health.testing.faults import FaultPlan

pytestmark = pytest.mark.integration  # the simulated provider on 127.0.0.1

CHAT: Any = [{"role": "user", "content": "Say something."}]


def provider_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("simulated-provider")]


@pytest.fixture
def provider() -> Iterator[SimulatedProvider]:
    with SimulatedProvider() as p:
        yield p
    assert not provider_threads()


@pytest.fixture
def client(provider: SimulatedProvider) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=provider.base_url, timeout=5) as c:
        yield c


def chat(client: httpx.Client, model: str = "gpt-4o", **extra: Any) -> httpx.Response:
    return client.post("/v1/chat/completions", json={"model": model, "messages": CHAT, **extra})


def sse_data(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.text.splitlines() if line.startswith("data: ")]


def sse_events(response: httpx.Response) -> list[str]:
    return [line[len("event: ") :] for line in response.text.splitlines() if line.startswith("event: ")]


# --- lifecycle ----------------------------------------------------------------------------------------------


def test_start_stop_urls_and_no_leaks() -> None:
    provider = SimulatedProvider()
    with pytest.raises(RuntimeError):
        _ = provider.base_url
    provider.start()
    port = provider.port
    assert port > 0
    assert provider.base_url == f"http://127.0.0.1:{port}"
    assert provider.openai_base_url == f"http://127.0.0.1:{port}/v1"
    assert provider.anthropic_base_url == provider.base_url
    assert httpx.get(f"{provider.openai_base_url}/models").status_code == 200
    assert provider_threads()
    provider.stop()
    provider.stop()  # idempotent
    assert not provider.running
    assert not provider_threads()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models")


def test_stop_releases_a_hanging_request_and_idle_keepalive_connections() -> None:
    provider = SimulatedProvider().start()
    provider.script("gpt-4o", Fault.hang())
    # One idle keep-alive connection in an httpx pool, one raw connection stuck in a hang.
    idle = httpx.Client(base_url=provider.base_url)
    assert idle.get("/v1/models").status_code == 200
    hung = socket.create_connection(("127.0.0.1", provider.port))
    body = json.dumps({"model": "gpt-4o", "messages": CHAT}).encode()
    hung.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    assert provider.wait_for_requests(2, timeout=5)
    assert len(provider_threads()) == 3  # serve loop + two connections
    provider.stop()
    assert not provider_threads()
    hung.settimeout(5)
    assert hung.recv(100) == b""  # closed without an answer
    hung.close()
    idle.close()
    assert provider.requests[-1].status is None


def test_release_hangs_lets_the_request_answer(provider: SimulatedProvider) -> None:
    provider.script("gpt-4o", Fault.hang(), times=1)
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(
            httpx.post(
                f"{provider.openai_base_url}/chat/completions",
                json={"model": "gpt-4o", "messages": CHAT},
                timeout=5,
            ).status_code
        )
    )
    thread.start()
    assert provider.wait_for_hangs(1, timeout=5)
    assert not result
    provider.release_hangs()
    thread.join(5)
    assert result == [200]


# --- wire formats -------------------------------------------------------------------------------------------


def test_openai_chat_json_body(client: httpx.Client) -> None:
    response = chat(client, max_tokens=100)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-4o"
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": "The simulated provider answers every",
        "refusal": None,
        "annotations": [],
    }
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 5
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 5


def test_openai_max_tokens_gives_finish_reason_length(client: httpx.Client) -> None:
    body = chat(client, max_completion_tokens=2).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["message"]["content"] == "The simulated"


def test_openai_stream_with_and_without_usage(client: httpx.Client) -> None:
    with_usage = chat(client, stream=True, stream_options={"include_usage": True})
    assert with_usage.headers["content-type"].startswith("text/event-stream")
    assert with_usage.headers["transfer-encoding"] == "chunked"
    data = sse_data(with_usage)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-4o" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]][-1] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    assert all(c["usage"] is None for c in chunks[:-1])
    plain = [json.loads(d) for d in sse_data(chat(client, stream=True))[:-1]]
    assert all("usage" not in c for c in plain)
    assert plain[-1]["choices"][0]["finish_reason"] == "stop"


def test_200_chunk_stream_from_setting_and_header(provider: SimulatedProvider, client: httpx.Client) -> None:
    provider.stream_chunks = 200
    contents = [
        json.loads(d)["choices"][0]["delta"].get("content") for d in sse_data(chat(client, stream=True))[:-1]
    ]
    assert len([c for c in contents if c]) == 200
    provider.stream_chunks = 5
    response = chat(client, stream=True, stream_options={"include_usage": True})
    assert json.loads(sse_data(response)[-2])["usage"]["completion_tokens"] == 5
    response = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": CHAT, "stream": True, "stream_options": {"include_usage": True}},
        headers={"x-simulated-chunks": "17", "x-simulated-chunk-delay": "0.001"},
    )
    assert json.loads(sse_data(response)[-2])["usage"]["completion_tokens"] == 17


def test_anthropic_messages_json_and_stream(client: httpx.Client) -> None:
    headers = {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant-secret-value-1234"}
    request = {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": CHAT}
    body = client.post("/v1/messages", json=request, headers=headers).json()
    assert body["id"].startswith("msg_")
    assert body["type"] == "message"
    assert body["content"] == [{"type": "text", "text": "The simulated provider answers every"}]
    assert body["stop_reason"] == "end_turn"
    assert body["usage"]["output_tokens"] == 5
    streamed = client.post("/v1/messages", json={**request, "stream": True}, headers=headers)
    assert streamed.headers["request-id"].startswith("req_")
    events = sse_events(streamed)
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    data = [json.loads(d) for d in sse_data(streamed)]
    assert [d["type"] for d in data] == events
    assert data[-2]["usage"] == {"output_tokens": 5}
    assert data[-2]["delta"]["stop_reason"] == "end_turn"
    models = client.get("/v1/models", headers=headers).json()
    assert models["data"][0]["type"] == "model"
    assert models["has_more"] is False


def test_gemini_generate_and_stream(client: httpx.Client) -> None:
    request = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    body = client.post("/v1beta/models/gemini-2.5-flash:generateContent", json=request).json()
    assert body["candidates"][0]["content"]["parts"][0]["text"] == "The simulated provider answers every"
    assert body["candidates"][0]["finishReason"] == "STOP"
    assert body["usageMetadata"]["candidatesTokenCount"] == 5
    streamed = client.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", json=request)
    chunks = [json.loads(d) for d in sse_data(streamed)]
    assert len(chunks) == 6
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_embeddings_float_and_base64(client: httpx.Client) -> None:
    floats = client.post(
        "/v1/embeddings", json={"model": "e", "input": "x", "encoding_format": "float"}
    ).json()
    assert len(floats["data"]) == 1
    assert len(floats["data"][0]["embedding"]) == 8
    encoded = client.post("/v1/embeddings", json={"model": "e", "input": ["x", "y"]}).json()
    assert len(encoded["data"]) == 2
    assert isinstance(encoded["data"][0]["embedding"], list)
    b64 = client.post("/v1/embeddings", json={"model": "e", "input": "x", "encoding_format": "base64"}).json()
    assert isinstance(b64["data"][0]["embedding"], str)


def test_unknown_path_and_bad_json(client: httpx.Client) -> None:
    missing = client.post("/v1/nothing", json={})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_url"
    bad = client.post("/v1/messages", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"


def test_model_list_makes_other_models_404() -> None:
    with (
        SimulatedProvider(models=["gpt-4o", "claude-haiku-4-5"]) as provider,
        httpx.Client(base_url=provider.base_url) as client,
    ):
        assert chat(client, "gpt-4o").status_code == 200
        unknown = chat(client, "gpt-9")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "model_not_found"
        anthropic_unknown = client.post(
            "/v1/messages", json={"model": "claude-x", "max_tokens": 1, "messages": CHAT}
        )
        assert anthropic_unknown.json()["error"]["type"] == "not_found_error"
        assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["gpt-4o", "claude-haiku-4-5"]
        assert provider.requests[1].fault == "model_not_found"


# --- faults on the wire -------------------------------------------------------------------------------------


def test_error_bodies_and_retry_after(provider: SimulatedProvider, client: httpx.Client) -> None:
    provider.script("gpt-4o", Fault.status(503), times=1)
    provider.script("gpt-4o", Fault.rate_limit(1.5), times=1)
    provider.script("claude-haiku-4-5", Fault.overloaded(), times=1)
    unavailable = chat(client)
    assert unavailable.status_code == 503
    assert set(unavailable.json()["error"]) == {"message", "type", "param", "code"}
    assert unavailable.json()["error"]["type"] == "server_error"
    limited = chat(client)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.headers["retry-after-ms"] == "1500"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    overloaded = client.post(
        "/v1/messages", json={"model": "claude-haiku-4-5", "max_tokens": 1, "messages": CHAT}
    )
    assert overloaded.status_code == 529
    assert overloaded.json()["type"] == "error"
    assert overloaded.json()["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert chat(client).status_code == 200


def test_gzip_only_when_accepted(provider: SimulatedProvider, client: httpx.Client) -> None:
    provider.script("*", Fault.gzip())
    accepted = chat(client)
    assert accepted.headers["content-encoding"] == "gzip"
    assert accepted.json()["object"] == "chat.completion"  # httpx decoded it
    raw = httpx.post(
        f"{provider.openai_base_url}/chat/completions",
        json={"model": "gpt-4o", "messages": CHAT},
        headers={"accept-encoding": "identity"},
    )
    assert "content-encoding" not in raw.headers
    assert raw.json()["object"] == "chat.completion"
    with client.stream(
        "POST", "/v1/chat/completions", json={"model": "gpt-4o", "messages": CHAT}
    ) as streamed:
        compressed = b"".join(streamed.iter_raw())
    assert json.loads(gzip.decompress(compressed))["object"] == "chat.completion"


def test_malformed_and_truncated_bodies(provider: SimulatedProvider, client: httpx.Client) -> None:
    provider.script("*", Fault.malformed_json(), times=1)
    provider.script("*", Fault.truncate(), times=1)
    for _ in range(2):
        response = chat(client)
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            response.json()


def test_stream_faults_on_the_wire(provider: SimulatedProvider, client: httpx.Client) -> None:
    provider.script("gpt-4o", Fault.truncate(), times=1)
    assert sse_data(chat(client, stream=True))[-1] != "[DONE]"
    provider.script("gpt-4o", Fault.stream_error(after_chunks=2), times=1)
    data = sse_data(chat(client, stream=True))
    assert len(data) == 4  # role chunk, two content chunks, the error
    assert json.loads(data[-1])["error"]["type"] == "server_error"
    provider.script("claude-haiku-4-5", Fault.stream_error(after_chunks=0, error_type="api_error"), times=1)
    streamed = client.post(
        "/v1/messages", json={"model": "claude-haiku-4-5", "max_tokens": 9, "messages": CHAT, "stream": True}
    )
    assert sse_events(streamed) == ["message_start", "content_block_start", "ping", "error"]
    assert json.loads(sse_data(streamed)[-1])["error"]["type"] == "api_error"


def test_reset_is_a_connection_reset(provider: SimulatedProvider, client: httpx.Client) -> None:
    provider.script("gpt-4o", Fault.reset(), times=1)
    provider.script("gpt-4o", Fault.reset(after_chunks=2), times=1)
    with pytest.raises(httpx.ReadError) as info:
        chat(client)
    assert "connection reset by peer" in str(info.value).lower()
    with client.stream(
        "POST", "/v1/chat/completions", json={"model": "gpt-4o", "messages": CHAT, "stream": True}
    ) as r:
        assert r.status_code == 200
        with pytest.raises(httpx.ReadError):
            r.read()
    assert chat(client).status_code == 200  # the pool recovers with a fresh connection


# --- the fault plan -----------------------------------------------------------------------------------------


def test_recovery_after_n_requests(provider: SimulatedProvider, client: httpx.Client) -> None:
    rule = provider.script("gpt-4o", Fault.status(500), times=3)
    assert [chat(client).status_code for _ in range(5)] == [500, 500, 500, 200, 200]
    assert rule.applied == 3
    assert chat(client, "gpt-4o-mini").status_code == 200  # other models unaffected


def test_recovery_after_t_seconds_with_injected_clock() -> None:
    clock = ManualClock()
    with SimulatedProvider(clock=clock) as provider, httpx.Client(base_url=provider.base_url) as client:
        provider.script("gpt-4o", Fault.status(503), for_seconds=30)
        assert chat(client).status_code == 503
        clock.advance(29.9)
        assert chat(client).status_code == 503
        clock.advance(0.1)
        assert chat(client).status_code == 200
        assert [r.time for r in provider.requests] == [1000.0, 1029.9, 1030.0]


def test_after_requests_api_filter_and_rule_order(provider: SimulatedProvider, client: httpx.Client) -> None:
    provider.script("*", Fault.status(502), api="anthropic")
    provider.script("gpt-4o", Fault.status(500), after_requests=2, times=1)
    provider.script("*", Fault.status(504), times=1)
    # gpt-4o: the first rule does not match (api), the second lets two pass (then the third catches the
    # first of them), then fails once.
    assert [chat(client).status_code for _ in range(4)] == [504, 200, 500, 200]
    messages = client.post(
        "/v1/messages", json={"model": "claude-haiku-4-5", "max_tokens": 1, "messages": CHAT}
    )
    assert messages.status_code == 502


def test_probability_is_seeded_and_reproducible() -> None:
    def run() -> list[bool]:
        plan = FaultPlan(clock=lambda: 0.0, rng=__import__("random").Random(7))
        plan.add(FaultRule(model="m", fault=Fault.status(500), probability=0.3))
        return [plan.choose("m", "openai") is not None for _ in range(200)]

    first = run()
    assert first == run()
    assert 30 < sum(first) < 90


def test_concurrent_requests_consume_an_exact_budget(provider: SimulatedProvider) -> None:
    provider.script("gpt-4o", Fault.status(503), times=7)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=provider.base_url) as c:
            for _ in range(5):
                code = chat(c).status_code
                with lock:
                    statuses.append(code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(statuses) == 40
    assert statuses.count(503) == 7
    assert statuses.count(200) == 33


# --- request log --------------------------------------------------------------------------------------------


def test_request_log_records_without_secrets(provider: SimulatedProvider, client: httpx.Client) -> None:
    provider.script("gpt-4o", Fault.status(503), times=1)
    chat(client, stream=True, extra_field=1)
    client.post(
        "/v1/messages",
        json={"model": "claude-haiku-4-5", "max_tokens": 1, "messages": CHAT},
        headers={"x-api-key": "sk-ant-api03-secret", "authorization": "Bearer sk-secret", "x-custom": "kept"},
    )
    first, second = provider.requests
    assert (first.method, first.path, first.api, first.operation, first.model) == (
        "POST",
        "/v1/chat/completions",
        "openai",
        "chat",
        "gpt-4o",
    )
    assert first.stream is True
    assert first.fault == "status"
    assert first.status == 503
    assert first.body is not None
    assert first.body["extra_field"] == 1
    assert second.headers["x-api-key"] == "[REDACTED]"
    assert second.headers["authorization"] == "[REDACTED]"
    assert second.headers["x-custom"] == "kept"
    assert "sk-" not in json.dumps(second.headers)
    assert provider.requests_for("claude-haiku-4-5") == [second]
    assert provider.requests_for(path="/v1/chat/completions") == [first]
    provider.clear_requests()
    assert provider.requests == []


# --- JSON scenarios and the CLI -----------------------------------------------------------------------------


def test_fault_and_rule_json_round_trip() -> None:
    faults = [
        Fault.latency(0.5),
        Fault.status(503, retry_after=2, message="x"),
        Fault.hang(after_chunks=3),
        Fault.model_not_found(),
        Fault.malformed_json(),
        Fault.gzip(),
        Fault.truncate(after_chunks=1),
        Fault.reset(),
        Fault.stream_error(error_type="overloaded_error"),
    ]
    for fault in faults:
        assert Fault.from_dict(json.loads(json.dumps(fault.to_dict()))) == fault
    rule = FaultRule(
        model="gpt-4o", fault=Fault.status(500), times=3, for_seconds=10, api="openai", probability=0.5
    )
    assert FaultRule.from_dict(json.loads(json.dumps(rule.to_dict()))).to_dict() == rule.to_dict()
    assert Fault.status(503).to_dict() == {"kind": "status", "http_status": 503}
    with pytest.raises(ValueError):
        Fault.from_dict({"kind": "explode"})
    with pytest.raises(ValueError):
        Fault.from_dict({"kind": "status"})
    with pytest.raises(ValueError):
        FaultRule.from_dict({"model": "m", "fault": {"kind": "ok"}, "api": "bedrock"})
    with pytest.raises(ValueError):
        Fault.status(200)


def test_scenarios_resolve_and_load(provider: SimulatedProvider, client: httpx.Client, tmp_path: Any) -> None:
    for name in SCENARIOS:
        resolve_scenario(name)
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps({"rules": [{"model": "gpt-4o", "fault": {"kind": "status", "http_status": 418}}]})
    )
    assert resolve_scenario(str(path))[0].fault.http_status == 418
    with pytest.raises(ValueError):
        resolve_scenario("no-such-scenario")
    provider.load_scenario(
        '[{"model": "gpt-4o", "fault": {"kind": "status", "http_status": 502}, "times": 1}]'
    )
    assert chat(client).status_code == 502
    assert provider.plan.to_list() == [
        {"model": "gpt-4o", "fault": {"kind": "status", "http_status": 502}, "times": 1}
    ]


def test_cli_serves_a_scenario_until_interrupted() -> None:
    scenario = json.dumps([{"model": "gpt-4o", "fault": {"kind": "status", "http_status": 503}, "times": 1}])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "otel_model_health.testing",
            "--port",
            "0",
            "--scenario",
            scenario,
            "--chunks",
            "3",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("simulated provider on http://127.0.0.1:")
        base = first.split(" on ")[1].strip()
        assert (
            httpx.post(f"{base}/v1/chat/completions", json={"model": "gpt-4o", "messages": CHAT}).status_code
            == 503
        )
        streamed = httpx.post(
            f"{base}/v1/chat/completions", json={"model": "gpt-4o", "messages": CHAT, "stream": True}
        )
        assert len(sse_data(streamed)) == 3 + 3  # role chunk, 3 content chunks, finish chunk, [DONE]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_cli_rejects_an_unknown_scenario() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "otel_model_health.testing", "--scenario", "nope"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown scenario" in result.stderr
