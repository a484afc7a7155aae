"""What one model-call attempt's response says, learned from the bytes as the caller reads them.

The transport creates a ``CallObserver`` per attempt; the response stream wrapper feeds it each chunk
and tells it how the stream ended. It ends the measurement exactly once. Nothing here raises: an
internal error is reported and the call is finished from its status alone.

The verdict follows what the caller saw (documented in docs/outcomes.md and docs/httpx-transport.md):
* bodies and event streams are judged *decoded*, as the client decodes them (``decoding``): a compressed
  event stream is parsed event by event like a plain one;
* a 2xx JSON body that does not parse (or does not decompress) is a failure ``malformed_response`` (the
  SDK will raise on it; a provider answering garbage is the provider's fault), so is a stream whose bytes
  the SDK cannot decode (corrupt compression, invalid UTF-8, an event that is not JSON);
* a 2xx body that is an ``{"error": …}`` object is that error (OpenRouter and others answer so);
* a response closed early while the closer handles a decoding error of its own (the SDK choked on an
  event too large for us to check) is a failure of that error's type, not a cancellation;
* a body over the caps (8 MiB) is not parsed and not judged: the outcome comes from the status;
* an SSE stream is complete when its terminal event came (`[DONE]`, `message_stop`,
  `response.completed`), or at EOF for Gemini, which has none;
* a stream the caller neither reads nor closes for ``IDLE_STREAM_LIMIT_S`` is finished as cancelled.

Over 400 lines on purpose: the rules above are one state machine over one response's state.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from time import monotonic
from types import FrameType
from typing import Any, Final

from ..._internal import guarded, report_internal_error
from ...outcomes import MALFORMED_RESPONSE, StreamEnd
from ..measurement import CallEnd, CallMeasurement
from ..responses import ResponseInfo, read_response, read_stream_event
from . import bodies, decoding, jsonfast
from .capture import ContentCapture
from .gemini import read_gemini
from .requests import DIALECT_GEMINI, TERMINAL_DONE, TERMINAL_EOF, Endpoint
from .sse import SSEParser

_MAX_ERROR_BODY: Final = 64 * 1024

_MODE_JSON: Final = 1
_MODE_SSE: Final = 2
_MODE_ERROR: Final = 3

# A response stream neither read nor closed for this long is finished as cancelled: an async client's
# pool keeps an abandoned stream alive, so its finaliser never runs while the event loop does.
IDLE_STREAM_LIMIT_S: Final = 600.0
_SWEEP_EVERY_S: Final = 30.0
_open_streams: weakref.WeakSet[CallObserver] = weakref.WeakSet()
_next_sweep = 0.0


class CallObserver:
    __slots__ = (
        "__weakref__",
        "_active_at",
        "_body",
        "_capture",
        "_decoder",
        "_encoding",
        "_endpoint",
        "_first",
        "_info",
        "_malformed",
        "_mode",
        "_pending",
        "_retry_after_s",
        "_sse",
        "_status",
        "_terminal",
        "_unjudged",
        "m",
    )

    def __init__(self, m: CallMeasurement, endpoint: Endpoint, capture: ContentCapture | None) -> None:
        self.m = m
        self._endpoint = endpoint
        self._capture = capture
        self._info = ResponseInfo()
        self._status = 0
        self._mode = _MODE_JSON
        self._encoding: str | None = None
        self._retry_after_s: float | None = None
        self._body: bodies.BodyCopy | None = None
        self._sse: SSEParser | None = None
        self._first = True
        self._pending: bytes | None = None
        self._terminal = False
        self._malformed = False  # the caller's SDK cannot decode what it got
        self._unjudged = False  # we stopped reading the stream (our limits): its status decides
        self._decoder: decoding.ContentDecoder | None = None
        self._active_at = 0.0

    # -- events from the transport -----------------------------------------------------------------------
    def response(
        self,
        status_code: int,
        content_type: str | None,
        content_encoding: str | None,
        retry_after_s: float | None,
    ) -> None:
        try:  # not guarded(): runs for every call, where a bare try is free
            self._status = status_code
            self._encoding = content_encoding
            self._retry_after_s = retry_after_s
            if not 200 <= status_code < 300:
                self._mode = _MODE_ERROR
                self._body = bodies.BodyCopy()
            elif content_type is not None and "text/event-stream" in content_type:
                self._mode = _MODE_SSE
                self._sse = SSEParser()
                if content_encoding:
                    try:
                        decoder = decoding.ContentDecoder(content_encoding)
                    except decoding.Unsupported:
                        self._stop_parsing()
                    else:
                        self._decoder = None if decoder.identity else decoder
            else:
                self._body = bodies.BodyCopy()
        except Exception:
            report_internal_error("observer.response")

    def streaming(self) -> None:
        """The body goes to the caller as a stream: watched for abandonment from now on."""
        self._active_at = monotonic()
        _open_streams.add(self)

    def content(self, body: bytes) -> None:
        """A response whose body was already read (e.g. an in-memory transport): judge it now."""
        self.handing(body)
        self.eof()  # parses it first

    def first_bytes(self) -> None:
        """The first bytes of the body reached the caller: time to first chunk, for streams."""
        if self._first:
            self._first = False
            if self._mode == _MODE_SSE:
                self.m.first_chunk()

    def handing(self, data: bytes) -> None:
        """``data`` is about to reach the caller. It is parsed afterwards (``handed``), so parsing adds
        no latency; every end of the call parses a chunk still pending (the caller may close right
        after the chunk that held the terminal event)."""
        if self._first:
            self.first_bytes()
        elif self._pending is not None:
            # A second iterator over the body (an SDK draining it after its event loop broke off) takes
            # over from a first one that never resumed: parse that one's chunk before it is replaced.
            self.handed()
        self._pending = data
        self._active_at = monotonic()

    def handed(self) -> None:
        """The chunk given to ``handing`` reached the caller: parse it now."""
        data = self._pending
        if data is None:
            return
        self._pending = None
        if not data or self.m.done:
            return
        try:
            if self._mode == _MODE_SSE:
                parser = self._sse
                if parser is not None:
                    decoder = self._decoder
                    if decoder is None:
                        self._parse(parser, data)
                    else:
                        for piece in decoder.feed(data):
                            self._parse(parser, piece)
            else:
                body = self._body
                if body is not None:
                    if self._mode == _MODE_ERROR and body.size >= _MAX_ERROR_BODY:
                        return
                    body.add(data)
        except decoding.Malformed:
            self._malformed = True
            self._sse = None
        except decoding.TooLarge:
            self._stop_parsing()
        except Exception:
            report_internal_error("observer.chunk")
            self._stop_parsing()
            self._body = None

    def _parse(self, parser: SSEParser, data: bytes) -> None:
        for name, payload in parser.feed(data):
            self._event(name, payload)
        if parser.invalid:
            self._malformed = True
            self._sse = None

    def _stop_parsing(self) -> None:
        """Our limits stopped the parse (not the stream): the outcome comes from the status and how the
        stream ends, never from events we did not read."""
        self._sse = None
        self._unjudged = True

    def eof(self) -> None:
        """The body ended cleanly."""
        self._end(self._eof, "observer.eof")

    def _eof(self) -> CallEnd:
        if self._mode == _MODE_SSE:
            parser = self._sse
            if parser is not None:
                if self._decoder is not None:
                    try:
                        self._decoder.finish()
                    except decoding.Malformed:
                        self._malformed = True
                for event in parser.close():
                    self._event(*event)
            return self._stream_result()
        if self._mode == _MODE_ERROR:
            return self._error_result()
        return self._json_result()

    def failed(self, exc: BaseException) -> None:
        """Reading the body raised (connection reset, read timeout): the stream dropped."""
        if self.m.done:
            return
        self.handed()
        with guarded("observer.failed"):
            self._apply_info()
        self.m.finish(
            status_code=self._status,
            exception=exc,
            stream_end=StreamEnd.DROPPED,
            retry_after_s=self._retry_after_s,
        )

    def closed(self) -> None:
        """The caller closed the response (or it was garbage-collected) before EOF, or after it."""
        self._end(self._closed, "observer.closed")

    def _closed(self) -> CallEnd:
        if self._mode == _MODE_ERROR:
            return self._error_result()
        if self._terminal or self._info.terminal or self._info.error_type is not None or self._malformed:
            # The SDKs close right after the terminal event (complete) and raise on an error event
            # or an unparseable one (that error is the outcome, not the caller's close).
            return self._stream_result()
        if (
            self._mode == _MODE_JSON
            and self._body is not None
            and not decoding.decodes_so_far(self._body.chunks, self._encoding)
        ):
            return self._malformed_result("the response body does not decompress")
        exc = _closers_decoding_error(sys.exc_info()[1])
        self._apply_info()
        if exc is not None:
            # The closer is cleaning up after failing on what it read: that failure is the outcome.
            return {"status_code": self._status, "exception": exc}
        return {"status_code": self._status, "stream_end": StreamEnd.CANCELLED}

    def _end(self, verdict: Callable[[], CallEnd], where: str) -> None:
        """End the call as ``verdict`` says (after parsing a chunk still pending); from its status alone
        when our code failed to tell more."""
        if self.m.done:
            return
        self.handed()
        try:  # not guarded(): runs for every call, where a bare try is free
            end = verdict()
        except Exception:
            report_internal_error(where)
            end = {"status_code": self._status or None}
        self.m.finish(**end)

    def idle_since(self) -> float:
        return self._active_at

    # -- internals ---------------------------------------------------------------------------------------
    def _event(self, name: str | None, data: str) -> None:
        if data == "[DONE]":
            self._terminal = True
            return
        try:
            obj = jsonfast.loads(data)
        except ValueError:
            self._malformed = True
            return
        info = self._info
        if self._endpoint.dialect == DIALECT_GEMINI:
            read_gemini(obj, info)
        else:
            read_stream_event(obj, info, event_name=name)
            if info.error_type is None and (
                name == "error" or (isinstance(obj, dict) and obj.get("type") == "error")
            ):
                info.error_type = _error_code(obj)
        if self._capture is not None:
            self._capture.stream_event(obj, name)

    def _stream_end(self) -> tuple[StreamEnd | None, str | None]:
        info = self._info
        if info.error_type is not None:
            return StreamEnd.ERROR_EVENT, info.error_type
        if self._malformed:
            return StreamEnd.ERROR_EVENT, MALFORMED_RESPONSE
        if self._unjudged and not (self._terminal or info.terminal):
            return None, None  # we stopped reading: the status decides
        terminal = self._endpoint.terminal
        if (
            terminal == TERMINAL_EOF
            or (terminal == TERMINAL_DONE and self._terminal)
            or info.terminal
            or self._terminal
        ):
            return StreamEnd.COMPLETE, None
        return StreamEnd.NO_TERMINAL_EVENT, None

    def _stream_result(self) -> CallEnd:
        end, error_type = self._stream_end()
        self._apply_info()
        return {
            "status_code": self._status,
            "stream_end": end,
            "stream_error_type": error_type,
            "error_message": self._info.error_message,
        }

    def _parsed_body(self) -> Any:
        """The decoded JSON body; raises Malformed, TooLarge or Unsupported."""
        body = self._body
        if body is None:
            raise bodies.Unsupported("no body")
        return bodies.parse_json(bodies.decode(body.data(), self._encoding))

    def _json_result(self) -> CallEnd:
        try:
            obj = self._parsed_body()
        except bodies.Malformed:
            return self._malformed_result("the response body is not valid JSON")
        except (bodies.TooLarge, bodies.Unsupported):
            return {"status_code": self._status}
        info = self._info
        if self._endpoint.dialect == DIALECT_GEMINI:
            read_gemini(obj, info)
        else:
            read_response(obj, info)
        if self._capture is not None:
            self._capture.response_body(obj)
        self._apply_info()
        if info.error_type is not None:  # a 200 whose body is an error object
            return {
                "status_code": self._status,
                "stream_end": StreamEnd.ERROR_EVENT,
                "stream_error_type": info.error_type,
                "error_message": info.error_message,
                "retry_after_s": self._retry_after_s,
            }
        return {"status_code": self._status}

    def _malformed_result(self, message: str) -> CallEnd:
        return {
            "status_code": self._status,
            "stream_end": StreamEnd.ERROR_EVENT,
            "stream_error_type": MALFORMED_RESPONSE,
            "error_message": message,
        }

    def _error_result(self) -> CallEnd:
        message: str | None = None
        code: str | None = None
        try:
            obj = self._parsed_body()
            info = ResponseInfo()
            if self._endpoint.dialect == DIALECT_GEMINI:
                read_gemini(obj, info)
            else:
                read_response(obj, info)
            message = info.error_message
            code = info.error_type  # e.g. `insufficient_quota` on a 429: the account's, not the model's
        except Exception:  # an HTML error page, a cut body: the status says enough
            message = None
        return {
            "status_code": self._status,
            "stream_error_type": code,
            "error_message": message,
            "retry_after_s": self._retry_after_s,
        }

    def _apply_info(self) -> None:
        info = self._info
        m = self.m
        m.response_model = info.response_model
        m.response_id = info.response_id
        if info.finish_reasons:
            m.finish_reasons = info.finish_reasons
        m.input_tokens = info.input_tokens
        m.output_tokens = info.output_tokens
        if self._capture is not None:
            self._capture.emit(m.span, info.finish_reasons)


# Exceptions a client or SDK raises when it cannot decode a response it read.
_DECODING_ERROR_NAMES: Final = frozenset({"DecodingError", "APIResponseValidationError"})
# Frames between the closer and our observer: ours, and the clients' own close methods.
_OUR_MODULES: Final = "otel_model_health."
_CLIENT_MODULES: Final = ("httpx.", "httpx2.")
_CLOSE_METHODS: Final = frozenset({"close", "aclose", "__del__"})


def _closers_decoding_error(exc: BaseException | None) -> BaseException | None:
    """``exc`` (the exception being handled while the response is closed) when it is a decoding error
    that the closing code itself raised while reading the response: the SDK's ``finally: response.close()``
    around its event loop, httpx's ``except: response.close()`` around ``read()``. A caller's own error
    handled in its own frame (``with stream: …`` raising) is not the model's failure: None then."""
    if exc is None or not (
        isinstance(exc, (ValueError, RecursionError))
        or any(cls.__name__ in _DECODING_ERROR_NAMES for cls in type(exc).__mro__)
    ):
        return None
    tb = exc.__traceback__
    if tb is None:
        return None
    handler = tb.tb_frame  # the frame that is handling it now
    frame: FrameType | None = sys._getframe(1)
    for _ in range(16):
        if frame is None:
            return None
        if frame is handler:
            return exc
        module = frame.f_globals.get("__name__", "")
        if not (
            module.startswith(_OUR_MODULES)
            or (module.startswith(_CLIENT_MODULES) and frame.f_code.co_name in _CLOSE_METHODS)
        ):
            return None  # the first frame of someone else's code is not the one handling the error
        frame = frame.f_back
    return None


def sweep_idle_streams(now: float | None = None) -> None:
    """Finish, as cancelled, every response stream idle for ``IDLE_STREAM_LIMIT_S``. Called at the start
    of model calls (at most every ``_SWEEP_EVERY_S``) and by ``force_flush``; never raises."""
    global _next_sweep
    now = monotonic() if now is None else now
    if now < _next_sweep:
        return
    _next_sweep = now + _SWEEP_EVERY_S
    with guarded("observer.sweep_idle_streams"):
        for observer in list(_open_streams):
            if observer.m.done:
                _open_streams.discard(observer)
            elif now - observer.idle_since() >= IDLE_STREAM_LIMIT_S:
                _open_streams.discard(observer)
                observer.closed()


def _error_code(obj: Any) -> str:
    if isinstance(obj, dict):
        code = obj.get("code")
        if isinstance(code, str) and code:
            return code[:64]
    return "error"
