"""A hostile HTTP/1.1 server on 127.0.0.1: raw sockets, one thread per connection, and for every case the
exact bytes of one response (status line, headers, framing, Content-Encoding, body), then ``Connection:
close``.

The case is the first path segment: the openai SDK's ``base_url`` is ``http://127.0.0.1:PORT/<case>/v1``,
the anthropic SDK's ``http://127.0.0.1:PORT/<case>``. Each case answers in the dialect of the request
(``…/chat/completions``: OpenAI, ``…/messages``: Anthropic), streamed when the request body says
``"stream": true``. Bodies are deterministic (fixed ids and timestamps), so an uninstrumented and an
instrumented call of the same case get the same bytes.

Bounded: the accept loop ends when ``stop()`` is called (its socket times out every 50 ms to look),
every connection socket times out, request heads and bodies are capped, and ``stop()`` joins every
thread with a timeout.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Self

import brotli  # type: ignore[import-untyped,unused-ignore]
import zstandard  # type: ignore[import-untyped,unused-ignore]

from otel_model_health._context import StartStop

# --- what every normal answer says -------------------------------------------------------------------

INPUT_TOKENS: Final = 17
OUTPUT_TOKENS: Final = 5
CREATED: Final = 1_700_000_000
OPENAI_ID: Final = "chatcmpl-hostile0001"
ANTHROPIC_ID: Final = "msg_hostile0001"
PIECES: Final = ("Hello", " from", " the", " hostile", " server")
# A response model id with a newline, an ANSI colour escape and a NUL.
EVIL_MODEL_SUFFIX: Final = "\n\x1b[31mINJECTED\x00"

MAX_HEAD: Final = 64 * 1024
MAX_REQUEST_BODY: Final = 1024 * 1024
SOCKET_TIMEOUT_S: Final = 5.0
ACCEPT_POLL_S: Final = 0.05
JOIN_TIMEOUT_S: Final = 5.0

OPENAI: Final = "openai"
ANTHROPIC: Final = "anthropic"


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request, as the cases need it."""

    method: str
    path: str
    case: str
    dialect: str  # openai | anthropic
    body: dict[str, Any]
    headers: dict[str, str]  # lower-cased names

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def model(self) -> str:
        model = self.body.get("model")
        return model if isinstance(model, str) else "unknown"

    @property
    def include_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True


# A case turns a request into the segments of its response, written in order (the whole response:
# status line, headers and body). The server writes each segment with its own sendall().
Responder = Callable[[Request], list[bytes]]


# --- framing -----------------------------------------------------------------------------------------

_REASONS: Final = {
    200: "OK",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
}


def head(status: int, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def with_length(status: int, content_type: str, body: bytes, *, encoding: str | None = None) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    if encoding is not None:
        headers.append(("Content-Encoding", encoding))
    return [head(status, headers), body]


def chunked(
    status: int, content_type: str, parts: Iterable[bytes], *, encoding: str | None = None
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Transfer-Encoding", "chunked")]
    if encoding is not None:
        headers.append(("Content-Encoding", encoding))
    out = [head(status, headers)]
    out.extend(b"%x\r\n%s\r\n" % (len(part), part) for part in parts if part)
    out.append(b"0\r\n\r\n")
    return out


def json_response(status: int, body: Any) -> list[bytes]:
    return with_length(status, "application/json", json.dumps(body).encode())


SSE_TYPE: Final = "text/event-stream; charset=utf-8"


def sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n".encode()


# --- bodies of a normal answer -----------------------------------------------------------------------


def openai_completion(model: str) -> dict[str, Any]:
    return {
        "id": OPENAI_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(PIECES), "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": INPUT_TOKENS,
            "completion_tokens": OUTPUT_TOKENS,
            "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        },
    }


def openai_events(request: Request, model: str) -> list[bytes]:
    """The events of a complete OpenAI chat stream, ``data: [DONE]`` included."""
    with_usage = request.include_usage

    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": OPENAI_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "choices": choices,
        }
        if with_usage:
            data["usage"] = usage
        return sse(data)

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    events = [chunk([choice({"role": "assistant", "content": ""})])]
    events.extend(chunk([choice({"content": piece})]) for piece in PIECES)
    events.append(chunk([choice({}, "stop")]))
    if with_usage:
        usage = {
            "prompt_tokens": INPUT_TOKENS,
            "completion_tokens": OUTPUT_TOKENS,
            "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        }
        events.append(chunk([], usage))
    events.append(sse("[DONE]"))
    return events


def anthropic_message(model: str) -> dict[str, Any]:
    return {
        "id": ANTHROPIC_ID,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "".join(PIECES)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS},
    }


def anthropic_events(model: str) -> list[bytes]:
    """The events of a complete Anthropic message stream, ``message_stop`` included."""
    start = {
        "type": "message_start",
        "message": {
            "id": ANTHROPIC_ID,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1},
        },
    }
    events = [
        sse(start, "message_start"),
        sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        ),
        sse({"type": "ping"}, "ping"),
    ]
    events.extend(
        sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
            "content_block_delta",
        )
        for piece in PIECES
    )
    events.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    events.append(
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": OUTPUT_TOKENS},
            },
            "message_delta",
        )
    )
    events.append(sse({"type": "message_stop"}, "message_stop"))
    return events


def normal_body(request: Request, model: str | None = None) -> dict[str, Any]:
    name = model if model is not None else request.model
    return openai_completion(name) if request.dialect == OPENAI else anthropic_message(name)


def normal_events(request: Request, model: str | None = None) -> list[bytes]:
    name = model if model is not None else request.model
    return openai_events(request, name) if request.dialect == OPENAI else anthropic_events(name)


def bad_line(request: Request, data: bytes) -> bytes:
    """One SSE event whose data line is ``data`` (raw bytes), named as a content delta for Anthropic."""
    prefix = b"" if request.dialect == OPENAI else b"event: content_block_delta\n"
    return prefix + b"data: " + data + b"\n\n"


# --- Content-Encoding --------------------------------------------------------------------------------


def compress(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data, mtime=0)
    if encoding == "deflate":
        return zlib.compress(data)  # HTTP "deflate" is the zlib format
    if encoding == "br":
        return bytes(brotli.compress(data))
    if encoding == "zstd":
        return bytes(zstandard.ZstdCompressor().compress(data))
    raise ValueError(encoding)


def compress_stream(events: list[bytes], encoding: str) -> list[bytes]:
    """A streaming compressor flushed after every event, as a server compressing SSE would do."""
    out: list[bytes] = []
    if encoding in ("gzip", "deflate"):
        wbits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
        comp = zlib.compressobj(wbits=wbits)
        for event in events:
            out.append(comp.compress(event) + comp.flush(zlib.Z_SYNC_FLUSH))
        out.append(comp.flush(zlib.Z_FINISH))
        return out
    if encoding == "br":
        bcomp = brotli.Compressor()
        for event in events:
            out.append(bytes(bcomp.process(event)) + bytes(bcomp.flush()))
        out.append(bytes(bcomp.finish()))
        return out
    if encoding == "zstd":  # one frame per event, as a server flushing each event as a frame would
        zcomp = zstandard.ZstdCompressor()
        return [bytes(zcomp.compress(event)) for event in events]
    raise ValueError(encoding)


# --- the cases ---------------------------------------------------------------------------------------


def _ok(request: Request) -> list[bytes]:
    if request.stream:
        return chunked(200, SSE_TYPE, normal_events(request))
    return json_response(200, normal_body(request))


def _compressed_sse(encoding: str) -> Responder:
    def respond(request: Request) -> list[bytes]:
        return chunked(200, SSE_TYPE, compress_stream(normal_events(request), encoding), encoding=encoding)

    return respond


def _compressed_json(encoding: str) -> Responder:
    def respond(request: Request) -> list[bytes]:
        body = compress(json.dumps(normal_body(request)).encode(), encoding)
        return with_length(200, "application/json", body, encoding=encoding)

    return respond


def _zstd_many_frames(request: Request) -> list[bytes]:
    """One real frame, then thousands of empty ones (decoding them frame by frame is quadratic)."""
    body = compress(json.dumps(normal_body(request)).encode(), "zstd")
    empty = compress(b"", "zstd")
    return with_length(200, "application/json", body + empty * (60_000 // len(empty)), encoding="zstd")


_GARBAGE: Final = b"this is not gzip data at all \x00\x01\x02\xff\xfe" * 8


def _corrupt_gzip(request: Request) -> list[bytes]:
    if request.stream:
        return chunked(200, SSE_TYPE, [_GARBAGE[:100], _GARBAGE[100:]], encoding="gzip")
    return with_length(200, "application/json", _GARBAGE, encoding="gzip")


def _invalid_utf8(request: Request) -> list[bytes]:
    """A complete stream whose second event carries bytes that are not UTF-8 inside its JSON text."""
    events = normal_events(request)
    if request.dialect == OPENAI:
        data = (
            b'{"id":"'
            + OPENAI_ID.encode()
            + b'","object":"chat.completion.chunk","created":'
            + str(CREATED).encode()
            + b',"model":"'
            + request.model.encode()
            + b'","choices":[{"index":0,"delta":{"content":"bad \xff\xfe\xc3 bytes"},"finish_reason":null}]}'
        )
    else:
        data = (
            b'{"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":"bad \xff\xfe\xc3 bytes"}}'
        )
    return chunked(200, SSE_TYPE, [events[0], bad_line(request, data), *events[1:]])


HUGE_LINE_BYTES: Final = 1024 * 1024 + 4096


def _huge_line(request: Request) -> list[bytes]:
    """One valid first event, then a data line over 1 MiB that is not JSON, then the end of the body."""
    events = normal_events(request)
    return chunked(200, SSE_TYPE, [events[0], bad_line(request, b"x" * HUGE_LINE_BYTES)])


NESTING: Final = 100_000


def _nested(request: Request) -> list[bytes]:
    """``[`` 100 000 times: as the whole 200 body, or as one SSE data line inside a complete stream."""
    if request.stream:
        events = normal_events(request)
        return chunked(200, SSE_TYPE, [events[0], bad_line(request, b"[" * NESTING), *events[1:]])
    return with_length(200, "application/json", b"[" * NESTING)


def _error_in_200(error: dict[str, Any]) -> Responder:
    def respond(request: Request) -> list[bytes]:
        return json_response(200, {"error": error})

    return respond


def _model_not_found(request: Request) -> list[bytes]:
    if request.dialect == OPENAI:
        body: dict[str, Any] = {
            "error": {
                "message": f"The model `{request.model}` does not exist or you do not have access to it.",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
        }
    else:
        body = {"type": "error", "error": {"type": "not_found_error", "message": f"model: {request.model}"}}
    return json_response(404, body)


def _auth(status: int) -> Responder:
    def respond(request: Request) -> list[bytes]:
        if request.dialect == OPENAI:
            if status == 401:
                error = {
                    "message": "Incorrect API key provided: sk-test. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            else:
                error = {
                    "message": "You are not allowed to sample from this model",
                    "type": "permission_error",
                    "param": None,
                    "code": None,
                }
            return json_response(status, {"error": error})
        kind = "authentication_error" if status == 401 else "permission_error"
        message = "invalid x-api-key" if status == 401 else "Your API key does not have permission"
        return json_response(status, {"type": "error", "error": {"type": kind, "message": message}})

    return respond


def _insufficient_credits(request: Request) -> list[bytes]:
    """OpenRouter's answer when the account is out of credits (the same body for both dialects)."""
    message = "Insufficient credits. Add more using https://openrouter.ai/settings/credits"
    return json_response(402, {"error": {"code": 402, "message": message}})


def _insufficient_quota(request: Request) -> list[bytes]:
    """OpenAI's 429 for an account without quota (the same body for both dialects)."""
    error = {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
    return json_response(429, {"error": error})


def _evil_model(request: Request) -> list[bytes]:
    model = request.model + EVIL_MODEL_SUFFIX
    if request.stream:
        return chunked(200, SSE_TYPE, normal_events(request, model))
    return json_response(200, normal_body(request, model))


CASES: Final[dict[str, Responder]] = {
    "ok": _ok,
    "sse-gzip": _compressed_sse("gzip"),
    "sse-deflate": _compressed_sse("deflate"),
    "sse-br": _compressed_sse("br"),
    "json-gzip": _compressed_json("gzip"),
    "json-deflate": _compressed_json("deflate"),
    "json-br": _compressed_json("br"),
    "json-zstd": _compressed_json("zstd"),
    "sse-zstd": _compressed_sse("zstd"),
    "json-zstd-many-frames": _zstd_many_frames,
    "corrupt-gzip": _corrupt_gzip,
    "sse-invalid-utf8": _invalid_utf8,
    "sse-huge-line": _huge_line,
    "nested-json": _nested,
    "error200-overloaded": _error_in_200({"type": "overloaded_error", "message": "Overloaded"}),
    "error200-server-error": _error_in_200({"type": "server_error", "message": "The server had an error"}),
    "error200-code-502": _error_in_200({"code": 502, "message": "Upstream provider returned an error"}),
    "error200-code-429": _error_in_200({"code": 429, "message": "Rate limit exceeded upstream"}),
    "model-not-found": _model_not_found,
    "auth-401": _auth(401),
    "auth-403": _auth(403),
    "credits-402": _insufficient_credits,
    "quota-429": _insufficient_quota,
    "evil-model": _evil_model,
}


# --- the server --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Seen:
    """What the server received: the case and dialect of every request, in order."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def add(self, case: str, dialect: str) -> None:
        with self.lock:
            self.requests.append((case, dialect))

    def snapshot(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.requests)


class HostileServer(StartStop):
    """Use as a context manager: ``with HostileServer() as server: server.openai_base_url("ok")``."""

    def __init__(self, cases: dict[str, Responder] | None = None) -> None:
        self.cases = dict(CASES if cases is None else cases)
        self.seen = Seen()
        self.errors: list[str] = []  # requests the server could not answer (a test bug, not a case)
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}
        self.port = 0

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(ACCEPT_POLL_S)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name="hostile-accept", daemon=True)
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(JOIN_TIMEOUT_S)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            conns = dict(self._conns)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in conns.values():
            thread.join(JOIN_TIMEOUT_S)
        self._acceptor = None
        self._listener = None

    def openai_base_url(self, case: str) -> str:
        return f"http://127.0.0.1:{self.port}/{case}/v1"

    def anthropic_base_url(self, case: str) -> str:
        return f"http://127.0.0.1:{self.port}/{case}"

    # --- serving ------------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():  # ends within ACCEPT_POLL_S of stop()
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(SOCKET_TIMEOUT_S)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(target=self._serve, args=(conn,), name="hostile-conn", daemon=True)
            with self._lock:
                self._conns[conn] = thread
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = self._read_request(conn)
            if request is not None:
                responder = self.cases.get(request.case)
                if responder is None:
                    self.errors.append(f"unknown case {request.case!r} ({request.path})")
                    for segment in json_response(404, {"error": {"message": "unknown case"}}):
                        conn.sendall(segment)
                else:
                    self.seen.add(request.case, request.dialect)
                    for segment in responder(request):
                        conn.sendall(segment)
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the client went away (an early close): nothing more to send
        finally:
            conn.close()
            with self._lock:
                self._conns.pop(conn, None)

    def _read_request(self, conn: socket.socket) -> Request | None:
        data = b""
        while b"\r\n\r\n" not in data:  # bounded by MAX_HEAD and the socket timeout
            if len(data) > MAX_HEAD:
                self.errors.append("request head too large")
                return None
            piece = conn.recv(65536)
            if not piece:
                return None
            data += piece
        raw_head, _, body = data.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.errors.append("chunked request bodies are not supported")
            return None
        length = int(headers.get("content-length") or 0)
        if length > MAX_REQUEST_BODY:
            self.errors.append("request body too large")
            return None
        while len(body) < length:  # bounded by length and the socket timeout
            piece = conn.recv(length - len(body))
            if not piece:
                return None
            body += piece
        path = target.split("?", 1)[0]
        segments = path.strip("/").split("/")
        case = segments[0] if segments else ""
        if path.endswith("/chat/completions"):
            dialect = OPENAI
        elif path.endswith("/messages"):
            dialect = ANTHROPIC
        else:
            self.errors.append(f"unexpected path {path}")
            return None
        parsed = json.loads(body) if body else {}
        return Request(
            method=method,
            path=path,
            case=case,
            dialect=dialect,
            body=parsed if isinstance(parsed, dict) else {},
            headers=headers,
        )
