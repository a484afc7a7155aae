"""The HTTP handler: one request in, one (possibly faulty) response out, in the provider's wire format."""

from __future__ import annotations

import gzip
import json
import math
import socket
import struct
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from otel_model_health.testing.anthropic_wire import AnthropicWire
from otel_model_health.testing.content import StreamBody, estimate_tokens, make_content, new_id
from otel_model_health.testing.faults import Fault
from otel_model_health.testing.gemini_wire import GeminiWire
from otel_model_health.testing.openai_wire import OpenAIWire, openai_error_body
from otel_model_health.testing.requestlog import RequestRecord, redact_headers
from otel_model_health.testing.routes import Route, route
from otel_model_health.testing.wire import ErrorReply, SimRequest, WireFormat

if TYPE_CHECKING:
    from otel_model_health.testing.server import SimulatedProvider

_WIRES: Final[dict[str, WireFormat]] = {
    "openai": OpenAIWire(),
    "azure": OpenAIWire(),
    "anthropic": AnthropicWire(),
    "gemini": GeminiWire(),
}
_MALFORMED_JSON: Final = (
    b'{"id": "broken-0001", "object": "chat.completion", "choices": [{"index": 0, "message": {'
)
# Request headers that override the provider's stream settings for one request.
CHUNKS_HEADER: Final = "x-simulated-chunks"
CHUNK_DELAY_HEADER: Final = "x-simulated-chunk-delay"


class Abort(Exception):
    """Stop handling this connection now (reset sent, provider stopping, or client gone)."""


class ProviderHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, as the SDKs expect from real providers
    # Headers and body go out in separate writes; with Nagle on, a keep-alive client waits ~40 ms for the
    # delayed ACK on every request after its first. Streams want each chunk on the wire at once, too.
    disable_nagle_algorithm = True
    server_version = "otel-model-health-simulated/1"
    sys_version = ""

    @property
    def provider(self) -> SimulatedProvider:
        return self.server.provider  # type: ignore[attr-defined, no-any-return]

    # --- plumbing -----------------------------------------------------------------------------------------

    def handle(self) -> None:
        try:
            super().handle()
        except (Abort, OSError):
            # A reset we sent, a client that went away, or stop(): nothing to answer.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        self.provider.logger.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    # --- one request --------------------------------------------------------------------------------------

    def _serve(self, method: str) -> None:
        raw = self._read_body()
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        found = route(method, parts.path, headers)
        body: Mapping[str, Any] | None = None
        bad_json = False
        if raw:
            try:
                parsed = json.loads(raw)
                body = parsed if isinstance(parsed, dict) else None
                bad_json = body is None
            except ValueError:
                bad_json = True
        record = self.provider.requests_log.append(
            time=self.provider.clock(),
            method=method,
            path=parts.path,
            query=parts.query,
            api=found.api if found else None,
            operation=found.operation if found else None,
            model=found.model_from(body or {}) if found else None,
            stream=found.is_stream(body or {}) if found else False,
            headers=redact_headers(headers),
            body=body,
        )
        if found is None:
            reply = ErrorReply(
                404,
                openai_error_body(
                    f"Unknown request URL: {method} {parts.path}", "invalid_request_error", "unknown_url"
                ),
            )
            self._send_error(record, reply, request_id_header="x-request-id")
            return
        wire = _WIRES[found.api]
        if bad_json:
            self._send_error(
                record,
                wire.error(400, error_type=None, message="The request body is not valid JSON."),
                wire.request_id_header,
            )
            return
        self._answer(
            record,
            found,
            wire,
            SimRequest(
                method=method,
                path=parts.path,
                api=found.api,
                operation=found.operation,
                model=record.model,
                stream=record.stream,
                body=body or {},
                headers=headers,
            ),
        )

    def _answer(self, record: RequestRecord, found: Route, wire: WireFormat, request: SimRequest) -> None:
        provider = self.provider
        if request.operation != "models" and not provider.accepts_model(request.model):
            record.fault = "model_not_found"
            self._send_error(record, wire.model_not_found(request.model), wire.request_id_header)
            return
        fault = provider.plan.choose(request.model, request.api)
        record.fault = None if fault is None else fault.kind
        if fault is not None and fault.delay > 0:
            provider.sleep(fault.delay)
        kind = fault.kind if fault is not None else "ok"
        if fault is not None and kind in ("status", "model_not_found"):
            reply = (
                wire.model_not_found(request.model)
                if kind == "model_not_found"
                else wire.error(fault.http_status or 500, error_type=fault.error_type, message=fault.message)
            )
            self._send_error(record, reply, wire.request_id_header, retry_after=fault.retry_after)
            return
        if fault is not None and kind == "hang" and fault.after_chunks is None:
            provider.hang()  # returns when released (then answers normally); raises Abort on stop()
        if fault is not None and kind == "reset" and fault.after_chunks is None:
            self._reset()
        if fault is not None and kind == "stream_error" and not request.stream:
            status = fault.http_status or wire.default_stream_error_status
            reply = wire.error(status, error_type=fault.error_type, message=fault.message)
            self._send_error(record, reply, wire.request_id_header)
            return
        content = make_content(
            model=request.model or "unknown",
            chunks=self._chunks(),
            max_tokens=wire.max_tokens(request),
            input_tokens=estimate_tokens(request.body, wire.input_keys(request)),
        )
        answer = wire.reply(request, content, models=provider.listed_models())
        if isinstance(answer, StreamBody):
            record.status = 200
            self._stream(wire, answer, fault)
        else:
            self._send_body(record, wire, answer, fault)

    def _chunks(self) -> int:
        value = self.headers.get(CHUNKS_HEADER)
        try:
            return int(value) if value is not None else self.provider.stream_chunks
        except ValueError:
            return self.provider.stream_chunks

    def _chunk_delay(self) -> float:
        value = self.headers.get(CHUNK_DELAY_HEADER)
        try:
            return float(value) if value is not None else self.provider.chunk_delay
        except ValueError:
            return self.provider.chunk_delay

    # --- responses ----------------------------------------------------------------------------------------

    def _head(
        self, status: int, content_type: str, headers: Mapping[str, str], request_id_header: str
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header(request_id_header, new_id("req_"))
        for name, value in headers.items():
            self.send_header(name, value)

    def _send_error(
        self,
        record: RequestRecord,
        reply: ErrorReply,
        request_id_header: str,
        *,
        retry_after: float | None = None,
    ) -> None:
        headers = dict(reply.headers)
        if retry_after is not None:
            # Retry-After is whole seconds; the openai SDK prefers the more precise retry-after-ms.
            headers["retry-after"] = str(max(0, math.ceil(retry_after)))
            headers["retry-after-ms"] = str(max(0, int(retry_after * 1000)))
        data = json.dumps(reply.body).encode()
        record.status = reply.status
        self._head(reply.status, "application/json", headers, request_id_header)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_body(
        self, record: RequestRecord, wire: WireFormat, answer: dict[str, Any], fault: Fault | None
    ) -> None:
        kind = fault.kind if fault is not None else "ok"
        data = _MALFORMED_JSON if kind == "malformed_json" else json.dumps(answer).encode()
        headers: dict[str, str] = {}
        accepts_gzip = "gzip" in (self.headers.get("Accept-Encoding") or "").lower()
        if accepts_gzip and (kind == "gzip" or self.provider.gzip):
            data = gzip.compress(data, mtime=0)
            headers["Content-Encoding"] = "gzip"
        if kind == "truncate":
            data = data[: len(data) // 2]  # a short body, cleanly framed: the JSON just stops
        record.status = 200
        self._head(200, "application/json", headers, wire.request_id_header)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if kind in ("reset", "hang") and fault is not None and fault.after_chunks is not None:
            self.wfile.write(data[: len(data) // 2])
            if kind == "reset":
                self._reset()
            self.provider.hang()
            self.wfile.write(data[len(data) // 2 :])
            return
        self.wfile.write(data)

    def _stream(self, wire: WireFormat, body: StreamBody, fault: Fault | None) -> None:
        kind = fault.kind if fault is not None else "ok"
        cut: int | None = None
        if fault is not None and kind in ("truncate", "reset", "hang", "stream_error", "malformed_json"):
            cut = fault.after_chunks
            if cut is None and kind in ("stream_error", "malformed_json"):
                cut = 0
        self._head(
            200, "text/event-stream; charset=utf-8", {"Cache-Control": "no-cache"}, wire.request_id_header
        )
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in body.preamble:
            self._chunk(event)
        delay = self._chunk_delay()
        for index, event in enumerate(body.chunks):
            if index == cut and fault is not None and self._strike(wire, fault):
                return
            if delay > 0:
                self.provider.sleep(delay)
            self._chunk(event)
        if cut is not None and cut >= len(body.chunks) and fault is not None and self._strike(wire, fault):
            return
        for event in body.epilogue:
            self._chunk(event)
        if not (kind == "truncate" and cut is None):
            for event in body.terminal:
                self._chunk(event)
        self._end_chunks()

    def _strike(self, wire: WireFormat, fault: Fault) -> bool:
        """Apply a mid-stream fault; True when the stream is over."""
        if fault.kind == "reset":
            self._reset()
        if fault.kind == "hang":
            self.provider.hang()
            return False  # released: the stream goes on
        if fault.kind == "stream_error":
            error_type = fault.error_type or wire.default_stream_error_type
            self._chunk(
                wire.stream_error_event(error_type, fault.message or wire.default_stream_error_message)
            )
        elif fault.kind == "malformed_json":
            self._chunk(wire.malformed_event())
        self._end_chunks()
        return True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _reset(self) -> None:
        """Close with SO_LINGER 0, so the kernel sends RST instead of FIN: a connection reset by peer."""
        sock: socket.socket = self.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # rfile holds a reference to the socket (makefile); the descriptor closes only when both are closed.
        self.rfile.close()
        sock.close()
        raise Abort
