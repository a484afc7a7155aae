"""Duck-typed reading of model responses: OpenAI and Anthropic bodies, as dicts or SDK objects.

The SDKs are not imports of the library: an attribute or a key of the same name is enough. Both the
transport (decoded JSON / SSE events) and the decorators (SDK objects) feed a ``ResponseInfo``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Final

# Events that end a stream cleanly.
ANTHROPIC_TERMINAL_EVENT: Final = "message_stop"
RESPONSES_TERMINAL_EVENTS: Final = frozenset({"response.completed", "response.incomplete", "response.failed"})
_MAX_FINISH_REASONS: Final = 16
_MAX_TEXT: Final = 256


class ResponseInfo:
    """What a response told us. Filled incrementally; every field optional."""

    __slots__ = (
        "error_message",
        "error_type",
        "finish_reasons",
        "input_tokens",
        "output_tokens",
        "response_id",
        "response_model",
        "terminal",
    )

    def __init__(self) -> None:
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: list[str] = []
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.terminal = False  # a terminal stream event was seen
        self.error_type: str | None = None  # an `error` object or event inside a 200 response
        self.error_message: str | None = None

    def add_finish_reason(self, reason: object) -> None:
        if isinstance(reason, str) and reason and len(self.finish_reasons) < _MAX_FINISH_REASONS:
            self.finish_reasons.append(reason[:_MAX_TEXT])


def _get(obj: object, name: str) -> Any:
    # Decoded JSON is a dict and SDK objects have attributes: both are checked before the (slow) ABC test.
    if isinstance(obj, dict):
        return obj.get(name)
    value = getattr(obj, name, None)
    if value is None and isinstance(obj, Mapping):
        return obj.get(name)
    return value


def _getter(obj: object) -> Callable[[str], Any]:
    """``obj.get`` for decoded JSON (one call per field read), ``_get`` bound to ``obj`` otherwise."""
    return obj.get if type(obj) is dict else partial(_get, obj)


def _text(value: object) -> str | None:
    return value[:_MAX_TEXT] if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _read_usage(usage: object, info: ResponseInfo) -> None:
    if usage is None:
        return
    get = _getter(usage)
    # OpenAI chat/completions: prompt/completion; Responses API and Anthropic: input/output.
    input_tokens = _int(get("input_tokens"))
    if input_tokens is None:
        input_tokens = _int(get("prompt_tokens"))
    output_tokens = _int(get("output_tokens"))
    if output_tokens is None:
        output_tokens = _int(get("completion_tokens"))
    if input_tokens is not None:
        # Anthropic counts cached input separately; the spec's input tokens include them.
        for cached in ("cache_read_input_tokens", "cache_creation_input_tokens"):
            extra = _int(get(cached))
            if extra:
                input_tokens += extra
        info.input_tokens = input_tokens
    if output_tokens is not None:
        info.output_tokens = output_tokens


def _read_error(error: object, info: ResponseInfo) -> None:
    if error is None:
        return
    if isinstance(error, str):
        info.error_type = info.error_type or "error"
        info.error_message = error[:_MAX_TEXT]
        return
    code = _get(error, "code")
    if isinstance(code, int) and not isinstance(code, bool):
        code = str(code)  # OpenRouter: the HTTP status of the upstream failure
    info.error_type = _text(_get(error, "type")) or _text(code) or "error"
    info.error_message = _text(_get(error, "message"))


def read_response(body: object, info: ResponseInfo) -> None:
    """A complete (non-streamed) response: OpenAI ChatCompletion / Completion / CreateEmbeddingResponse /
    Response, Anthropic Message, or their dict forms."""
    if body is None:
        return
    get = _getter(body)
    info.response_model = _text(get("model")) or info.response_model
    info.response_id = _text(get("id")) or info.response_id
    choices = get("choices")
    if isinstance(choices, list):
        for choice in choices:
            info.add_finish_reason(_get(choice, "finish_reason"))
    stop_reason = get("stop_reason")  # Anthropic
    if stop_reason is not None:
        info.add_finish_reason(stop_reason)
    if get("object") == "response":  # OpenAI Responses API
        info.add_finish_reason(get("status"))
    _read_usage(get("usage"), info)
    _read_error(get("error"), info)


def read_stream_event(event: object, info: ResponseInfo, *, event_name: str | None = None) -> None:
    """One streamed event: an OpenAI chat/completion chunk, an Anthropic event, a Responses event, as a
    dict (decoded SSE data) or an SDK object. ``event_name`` is the SSE ``event:`` field when known."""
    get = _getter(event)  # runs for every chunk of every stream
    kind = get("type")
    if not isinstance(kind, str):
        kind = event_name
    if kind is None or kind in _CHUNK_TYPES:
        # OpenAI chunk: model and id repeat in every chunk; usage only in the last one (include_usage).
        if info.response_model is None:
            info.response_model = _text(get("model"))
        if info.response_id is None:
            info.response_id = _text(get("id"))
        choices = get("choices")
        if isinstance(choices, list):
            for choice in choices:
                reason = _get(choice, "finish_reason")
                if reason is not None:
                    info.add_finish_reason(reason)
        usage = get("usage")
        if usage is not None:
            _read_usage(usage, info)
        error = get("error")
        if error is not None:
            _read_error(error, info)
        return
    if kind not in _INFORMATIVE_EVENTS:
        return  # a content delta: nothing to learn from it but that it parsed
    if kind == "message_start":
        message = _get(event, "message")
        info.response_model = _text(_get(message, "model")) or info.response_model
        info.response_id = _text(_get(message, "id")) or info.response_id
        _read_usage(_get(message, "usage"), info)
    elif kind == "message_delta":
        info.add_finish_reason(_get(_get(event, "delta"), "stop_reason"))
        usage = _get(event, "usage")
        output_tokens = _int(_get(usage, "output_tokens")) if usage is not None else None
        if output_tokens is not None:
            info.output_tokens = output_tokens
    elif kind == ANTHROPIC_TERMINAL_EVENT:
        info.terminal = True
    elif kind == "error":
        _read_error(_get(event, "error"), info)
    elif kind in RESPONSES_TERMINAL_EVENTS:
        read_response(_get(event, "response"), info)
        info.terminal = True
    elif kind == "response.created":
        response = _get(event, "response")
        info.response_model = _text(_get(response, "model")) or info.response_model
        info.response_id = _text(_get(response, "id")) or info.response_id


_CHUNK_TYPES: Final = frozenset({"chat.completion.chunk", "text_completion"})
# The kinds read_stream_event's chain reads (keep in step with it); every other event, the many content
# deltas, only has to parse.
_INFORMATIVE_EVENTS: Final = frozenset(
    {"message_start", "message_delta", ANTHROPIC_TERMINAL_EVENT, "error", "response.created"}
    | RESPONSES_TERMINAL_EVENTS
)
