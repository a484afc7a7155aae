"""Every bad input the commands can get ends in exit code 2 and one clean line on stderr, never a traceback.

One table: bad options, bad URLs, bad scenario files, and hostile or broken health endpoints, served by a
raw socket server on 127.0.0.1 that answers exactly the bytes each case needs (a trickle included, over
HTTP and HTTPS). Each case runs the real command in a subprocess.
"""

from __future__ import annotations

import json
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli

pytestmark = pytest.mark.integration  # runs a subprocess

SUMMARY: dict[str, Any] = {
    "status": "healthy",
    "models": {"total": 1, "healthy": 1},
    "providers": {"openai": {"status": "healthy", "models": 1, "unhealthy": 0}},
    "checked_at": "2026-01-01T00:00:00+00:00",
}
MODEL: dict[str, Any] = {
    "provider": "openai",
    "model": "gpt-4o",
    "gateway": "direct",
    "status": "healthy",
    "breaker_state": "closed",
    "success_rate": 1.0,
    "calls_in_window": 1,
    "latency_p50_s": 0.1,
    "latency_p95_s": 0.1,
    "last_error_type": None,
}
SCENARIO: dict[str, Any] = {"models": [{"provider": "openai", "model": "m"}]}
TRICKLE_TIMEOUT_S = 2.0
DEEP = b"[" * 100_000 + b"]" * 100_000  # deeper than Python's recursion limit
HUGE_INT = b"1" * 5000  # beyond int()'s 4300-digit limit


def nested(levels: int) -> Any:
    """Deeper than the 32 levels allowed, yet shallow enough for json to parse."""
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def doc(base: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps({**base, **changes}).encode()


def models(**changes: Any) -> bytes:
    return json.dumps({"models": [{**MODEL, **changes}]}).encode()


def scenario(**changes: Any) -> bytes:
    return json.dumps({**SCENARIO, **changes}, allow_nan=True).encode()


def model_scenario(**changes: Any) -> bytes:
    return scenario(models=[{**SCENARIO["models"][0], **changes}])


def phase_scenario(**changes: Any) -> bytes:
    return scenario(phases=[{"at": 1, "model": "m", "state": "down", **changes}])


# --- the endpoint -----------------------------------------------------------------------------------------


def http_answer(body: bytes, status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "Connection: close\r\n\r\n").encode() + body


GOOD_SUMMARY = http_answer(doc(SUMMARY))
GOOD_MODELS = http_answer(models())
TRICKLE = b"trickle"  # marker: send a good answer one byte a second

# /<case>/health and /<case>/health/models answer these bytes (the good document when not listed).
ENDPOINTS: dict[str, dict[str, bytes]] = {
    "deep": {"summary": http_answer(DEEP)},
    "deep40": {"summary": http_answer(doc(SUMMARY, providers={"x": {"status": nested(40)}}))},
    "infinity": {"summary": http_answer(doc(SUMMARY).replace(b'"total": 1', b'"total": Infinity'))},
    "nan": {"models": http_answer(models().replace(b'"success_rate": 1.0', b'"success_rate": NaN'))},
    "1e400": {"models": http_answer(models().replace(b'"calls_in_window": 1', b'"calls_in_window": 1e400'))},
    "hugeint": {"summary": http_answer(doc(SUMMARY).replace(b'"total": 1', b'"total": ' + HUGE_INT))},
    "provider-str": {"summary": http_answer(doc(SUMMARY, providers={"openai": "healthy"}))},
    "providers-list": {"summary": http_answer(doc(SUMMARY, providers=["openai"]))},
    "count-str": {"summary": http_answer(doc(SUMMARY, models={"total": "1"}))},
    "count-negative": {"summary": http_answer(doc(SUMMARY, models={"total": 1, "healthy": -1}))},
    "summary-array": {"summary": http_answer(b"[]")},
    "no-status": {"summary": http_answer(doc({k: v for k, v in SUMMARY.items() if k != "status"}))},
    "entry-str": {"models": http_answer(b'{"models": ["gpt-4o"]}')},
    "model-int": {"models": http_answer(models(model=5))},
    "calls-negative": {"models": http_answer(models(calls_in_window=-1))},
    "latency-bool": {"models": http_answer(models(latency_p50_s=True))},
    "models-object": {"models": http_answer(b'{"models": {"gpt-4o": {}}}')},
    "bad-utf8": {"summary": http_answer(b'{"status": "\xff"}')},
    "huge-body": {"summary": http_answer(b'"' + b"x" * (9 * 1024 * 1024) + b'"')},
    "empty": {"summary": http_answer(b"")},
    "http-500": {"summary": http_answer(b"\x1b[2J\x1b]0;pwned\x07oops", "500 Internal Server Error")},
    "not-http": {"summary": b"SSH-2.0-OpenSSH_9.6\r\n"},
    "hang-up": {"summary": b""},
    "trickle": {"summary": TRICKLE},
    # Not an error: names with terminal escapes, printed without them (test_remote_names_are_printed_inert).
    "escapes": {
        "summary": http_answer(
            doc(SUMMARY, status="unhealthy", providers={"open\x1b[31mai\u202e": {"status": "unhealthy"}})
        ),
        "models": http_answer(
            models(
                model="\x1b]8;;http://evil.example\x07gpt-4o\x1b]8;;\x07\x1b[2J",
                provider="open\x9bai\x00",
                last_error_type="503\r\n\x7fforged line",
            )
        ),
    },
}


class _Handler(socketserver.BaseRequestHandler):
    server: _Endpoint

    def handle(self) -> None:
        sock: socket.socket = self.request
        if self.server.tls is not None:
            sock = self.server.tls.wrap_socket(sock, server_side=True)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                return
            head += chunk
        path = head.split(b" ")[1].decode().split("?")[0]
        case, _, rest = path.strip("/").partition("/")
        which = "models" if rest.endswith("/models") else "summary"
        answer = self.server.endpoints.get(case, {}).get(
            which, GOOD_SUMMARY if which == "summary" else GOOD_MODELS
        )
        if answer == TRICKLE:
            for byte in GOOD_SUMMARY:
                if self.server.stopping.wait(1.0):
                    break
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    break  # the client gave up: what the case wants
        else:
            sock.sendall(answer)
        sock.close()


class _Endpoint(socketserver.ThreadingTCPServer):
    allow_reuse_address = True

    def __init__(self, endpoints: dict[str, dict[str, bytes]], tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.endpoints = endpoints
        self.tls = tls
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"


def _serve(server: _Endpoint) -> Iterator[_Endpoint]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()  # ends the trickles
        server.shutdown()
        server.server_close()  # joins the handler threads
        thread.join(10)
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1; clients trust it through SSL_CERT_FILE."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def http_endpoint() -> Iterator[_Endpoint]:
    yield from _serve(_Endpoint(ENDPOINTS))


@pytest.fixture(scope="module")
def https_endpoint(tls_cert: tuple[Path, Path]) -> Iterator[_Endpoint]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_cert)
    yield from _serve(_Endpoint(ENDPOINTS, tls=context))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the cases --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # {http} / {https}: the endpoints; {file}: a file holding `file`; {tmp}: a folder
    message: str  # found in the error line
    file: bytes | None = None
    max_s: float | None = None  # a wall-clock bound, for the trickle cases


def status(case: str, message: str, *extra: str, scheme: str = "http", max_s: float | None = None) -> Case:
    url = f"{{{scheme}}}/{case}/health"
    return Case(f"status-{scheme}-{case}", ("status", "--url", url, *extra), message, max_s=max_s)


def demo_file(name: str, content: bytes, message: str) -> Case:
    return Case(f"demo-scenario-{name}", ("demo", "--scenario", "{file}"), message, file=content)


OUT_OF_RANGE = "must be > 0 and <= 1000000"
TRICKLE_BOUND_S = TRICKLE_TIMEOUT_S + 1.5  # interpreter start-up and imports included

CASES = [
    # status: options and URLs
    *(
        Case(f"status-timeout-{value}", ("status", "--url", "{http}", "--timeout", value), message)
        for value, message in [
            ("nan", OUT_OF_RANGE),
            ("-1", OUT_OF_RANGE),
            ("0", OUT_OF_RANGE),
            ("inf", OUT_OF_RANGE),
            ("1e30", OUT_OF_RANGE),
            ("soon", "not a number"),
        ]
    ),
    Case("status-url-no-scheme", ("status", "--url", "localhost:8000/health"), "must be an http(s) URL"),
    Case("status-url-ftp", ("status", "--url", "ftp://127.0.0.1/health"), "must be an http(s) URL"),
    Case("status-url-port", ("status", "--url", "http://127.0.0.1:99999/health"), "is not a valid URL"),
    Case("status-url-bracket", ("status", "--url", "http://[::1"), "is not a valid URL"),
    Case(
        "status-url-escape", ("status", "--url", "{http}/he\x1b[2Jalth"), "can't contain control characters"
    ),
    Case("status-url-space", ("status", "--url", "{http}/he alth"), "can't contain control characters"),
    Case("status-refused", ("status", "--url", "http://127.0.0.1:{closed}/health"), "cannot reach"),
    # status: what a broken or hostile endpoint answers
    status("deep", "nested deeper than 32 levels"),
    status("deep40", "nested deeper than 32 levels"),
    status("infinity", "Infinity is not a JSON number"),
    status("nan", "NaN is not a JSON number"),
    status("1e400", "number out of range: 1e400"),
    status("hugeint", "number too large"),
    status("provider-str", "providers['openai'] must be an object, got 'healthy'"),
    status("providers-list", "'providers' must be an object"),
    status("count-str", "models.total must be an integer >= 0, got '1'"),
    status("count-negative", "models.healthy must be an integer >= 0, got -1"),
    status("summary-array", "answered JSON that is not an object"),
    status("no-status", "summary.status must be a string, got None"),
    status("entry-str", "models[0] must be an object, got 'gpt-4o'"),
    status("model-int", "models[0].model must be a string, got 5"),
    status("calls-negative", "models[0].calls_in_window must be an integer >= 0, got -1"),
    status("latency-bool", "models[0].latency_p50_s must be a number >= 0 or null, got True"),
    status("models-object", "not a model list"),
    status("bad-utf8", "not UTF-8 text (byte 0xff at offset 12)"),
    status("huge-body", "larger than 8388608 bytes"),
    status("empty", "did not answer JSON"),
    status("http-500", "answered HTTP 500: [2J]0;pwnedoops"),
    status("not-http", "cannot reach"),
    status("hang-up", "Remote end closed connection"),
    status("trickle", "within --timeout 2 s", "--timeout", "2", max_s=TRICKLE_BOUND_S),
    status("trickle", "within --timeout 2 s", "--timeout", "2", scheme="https", max_s=TRICKLE_BOUND_S),
    # demo: options
    *(
        Case(f"demo-duration-{value}", ("demo", "--duration", value), OUT_OF_RANGE)
        for value in ("nan", "-1", "inf", "1e30")
    ),
    Case(
        "demo-telemetry-file",
        ("demo", "--telemetry-file", "{tmp}/missing/t.jsonl", "--duration", "1"),
        "No such file or directory",
    ),
    # demo: scenario files
    demo_file("bad-utf8", b'{"name": "\xff"}', "not UTF-8 text (byte 0xff at offset 10)"),
    demo_file("deep", DEEP, "nested deeper than 32 levels"),
    demo_file("deep40", scenario(description=nested(40)), "nested deeper than 32 levels"),
    demo_file("seed-1e400", scenario(seed=0).replace(b'"seed": 0', b'"seed": 1e400'), "number out of range"),
    demo_file("seed-nan", scenario(seed=float("nan")), "NaN is not a JSON number"),
    demo_file(
        "seed-hugeint", scenario(seed=0).replace(b'"seed": 0', b'"seed": ' + HUGE_INT), "number too large"
    ),
    demo_file("seed-negative", scenario(seed=-1), "seed must be an integer from 0 to"),
    demo_file("seed-float", scenario(seed=1.5), "seed must be an integer from 0 to"),
    demo_file("seed-string", scenario(seed="7"), "seed must be an integer from 0 to"),
    demo_file("duration-infinity", scenario(duration_s=float("inf")), "Infinity is not a JSON number"),
    demo_file("duration-1e30", scenario(duration_s=1e30), f"duration_s {OUT_OF_RANGE}"),
    demo_file("duration-negative", scenario(duration_s=-5), f"duration_s {OUT_OF_RANGE}"),
    demo_file("probe-interval-1e300", scenario(probe_interval_s=1e300), f"probe_interval_s {OUT_OF_RANGE}"),
    demo_file("name-list", scenario(name=["x"]), "name must be a string, got ['x']"),
    demo_file(
        "models-1000",
        scenario(models=[{"provider": "openai", "model": f"m{i}"} for i in range(1000)]),
        "'models' must be a list of 1 to 20 models",
    ),
    demo_file(
        "phases-1000",
        scenario(phases=[{"at": i, "model": "m", "state": "down"} for i in range(1000)]),
        "'phases' must be a list of at most 200 phases",
    ),
    demo_file("calls-tiny", model_scenario(calls_per_s=1e-300), "calls_per_s must be 0 or >= 0.01"),
    demo_file("calls-huge", model_scenario(calls_per_s=1e6), "calls_per_s must be >= 0 and <= 20"),
    demo_file("calls-string", model_scenario(calls_per_s="fast"), "calls_per_s must be a number"),
    demo_file(
        "stream-every-huge", model_scenario(stream_every=10**12), "stream_every must be an integer from 0"
    ),
    demo_file("model-int", model_scenario(model=5), "models[0].model must be a string, got 5"),
    demo_file("gateway-object", model_scenario(gateway={}), "models[0].gateway must be a string"),
    demo_file("phase-at-1e30", phase_scenario(at=1e30), "phases[0].at must be >= 0 and <= 1000000"),
    demo_file("phase-for-0", phase_scenario(for_s=0), f"phases[0].for_s {OUT_OF_RANGE}"),
    demo_file("phase-state-list", phase_scenario(state=[]), "phases[0].state must be one of"),
    demo_file("phase-note-int", phase_scenario(note=5), "phases[0].note must be a string"),
    demo_file("fault-list", phase_scenario(fault=[]), "phases[0].fault must be a JSON object"),
    demo_file("fault-delay", phase_scenario(fault={"delay": 1e9}), "fault.delay must be >= 0 and <= 30"),
    demo_file(
        "fault-status-string",
        phase_scenario(fault={"kind": "status", "http_status": "503"}),
        "fault.http_status must be an integer",
    ),
    demo_file("fault-status-200", phase_scenario(fault={"kind": "status", "http_status": 200}), "4xx or 5xx"),
    demo_file(
        "fault-status-huge",
        phase_scenario(fault={"kind": "status", "http_status": 10**10}),
        "fault.http_status must be an integer from 0 to 599",
    ),
    demo_file(
        "fault-retry-negative",
        phase_scenario(fault={"kind": "status", "http_status": 429, "retry_after": -1}),
        "fault.retry_after must be >= 0",
    ),
    demo_file(
        "fault-chunks-float",
        phase_scenario(fault={"kind": "truncate", "after_chunks": 1.5}),
        "fault.after_chunks must be an integer",
    ),
    demo_file("breaker-list", scenario(breaker=[]), "'breaker' must be a JSON object"),
    demo_file(
        "breaker-window-huge",
        scenario(breaker={"window_size": 10**15}),
        "breaker.window_size must be an integer from 0 to 10000",
    ),
    demo_file(
        "breaker-wait-string", scenario(breaker={"open_wait_s": "3"}), "breaker.open_wait_s must be a number"
    ),
    demo_file(
        "breaker-wait-1e30", scenario(breaker={"open_wait_s": 1e30}), "breaker.open_wait_s must be >= 0"
    ),
    demo_file(
        "breaker-kind-int", scenario(breaker={"window_kind": 5}), "breaker.window_kind must be a string"
    ),
    demo_file("too-big", b" " * (2 * 1024 * 1024) + b"{}", "larger than 1048576 bytes"),
    demo_file("empty", b"", "not valid JSON"),
    demo_file("array", b"[]", "the scenario must be a JSON object, got list"),
    Case("demo-scenario-missing", ("demo", "--scenario", "{tmp}/nope.json"), "cannot read scenario file"),
    Case("demo-scenario-directory", ("demo", "--scenario", "{tmp}"), "cannot read scenario file"),
    Case("demo-scenario-dev-zero", ("demo", "--scenario", "/dev/zero"), "larger than 1048576 bytes"),
    # probe: options
    *(
        Case(
            f"probe-{option}-{value}",
            ("probe", "--base-url", "{http}/v1", "--model", "m", option, value),
            message,
        )
        for option, value, message in [
            ("--interval", "nan", OUT_OF_RANGE),
            ("--interval", "1e30", OUT_OF_RANGE),
            ("--timeout", "-1", OUT_OF_RANGE),
            ("--duration", "inf", OUT_OF_RANGE),
            ("--api", "grpc", "invalid choice"),
        ]
    ),
    Case("probe-url", ("probe", "--base-url", "not a url", "--model", "m"), "must be an http(s) URL"),
    Case(
        "probe-port", ("probe", "--base-url", "http://127.0.0.1:99999/v1", "--model", "m"), "not a valid URL"
    ),
    Case(
        "probe-empty-model", ("probe", "--base-url", "{http}/v1", "--model", " "), "--model must not be empty"
    ),
    *(
        Case(
            f"probe-api-key-{name}",
            ("probe", "--base-url", "{http}/v1", "--model", "m", "--api-key", key),
            message,
        )
        for name, key, message in [
            ("newline", "sk-a\nb", "--api-key must be printable ASCII"),
            ("cyrillic", "sk-ключ", "--api-key must be printable ASCII"),
        ]
    ),
    Case(
        "probe-once-duration",
        ("probe", "--base-url", "{http}/v1", "--model", "m", "--once", "--duration", "5"),
        "exclude each other",
    ),
    Case(
        "probe-models-anthropic",
        ("probe", "--base-url", "{http}", "--model", "m", "--mode", "models", "--api", "anthropic"),
        "only available with the openai API",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_exits_2_with_one_clean_line(
    case: Case,
    http_endpoint: _Endpoint,
    https_endpoint: _Endpoint,
    tls_cert: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    file = tmp_path / "scenario.json"
    if case.file is not None:
        file.write_bytes(case.file)
    values = {
        "http": http_endpoint.url,
        "https": https_endpoint.url,
        "closed": _closed_port(),
        "file": file,
        "tmp": tmp_path,
    }
    argv = [arg.format(**values) for arg in case.argv]
    start = time.monotonic()
    result = run_cli(argv, env={"SSL_CERT_FILE": str(tls_cert[0])})
    elapsed = time.monotonic() - start

    assert result.returncode == 2, (result.returncode, result.stdout[-500:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr[:2000]
    line = result.stderr[:-1]
    assert line.startswith(f"otel-model-health {case.argv[0]}: error: "), line
    assert case.message in line, line
    assert not _unprintable(line), repr(line)
    assert "ключ" not in line  # a secret is never echoed
    assert result.stdout == ""
    if case.max_s is not None:
        print(f"{case.id}: exited after {elapsed:.2f} s (--timeout 2, bound {case.max_s:g} s)")
        assert elapsed < case.max_s, f"{case.id} took {elapsed:.2f} s, more than {case.max_s:g} s"


def _unprintable(text: str) -> list[str]:
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf")]


def test_remote_names_are_printed_inert(http_endpoint: _Endpoint) -> None:
    result = run_cli(["status", "--url", f"{http_endpoint.url}/escapes/health"])
    assert result.returncode == 1, result.stderr  # the endpoint says unhealthy
    assert not _unprintable(result.stdout), repr(result.stdout)
    row = result.stdout.splitlines()[2]
    assert row.startswith("]8;;http://evil.example")  # visible, but no longer an escape sequence
    assert "gpt-4o]8;;[2J" in row
    assert "openai" in row.split()
    assert "503 forged line" in row
    assert result.stdout.splitlines()[-1].endswith("provider outage: open[31mai")


def test_https_endpoint_is_read(https_endpoint: _Endpoint, tls_cert: tuple[Path, Path]) -> None:
    """The TLS path of the deadline sockets works end to end (the trickle case only shows it stops)."""
    result = run_cli(
        ["status", "--url", f"{https_endpoint.url}/good/health"], env={"SSL_CERT_FILE": str(tls_cert[0])}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2].split()[:4] == ["gpt-4o", "openai", "direct", "healthy"]
