"""Scrubbing of secrets before any text reaches a span, the registry's last error, or Sentry.

Four passes; what each one scrubs, and why, is in docs/privacy.md:

1. the value after a key-like name: ``api_key=…``, ``"password": "…"``, ``Authorization: Basic …``;
2. keys recognisable by their own shape: ``sk-…``, ``AIza…``, ``Bearer …``, JWTs ...;
3. a bare run of 32 or more letters and digits with both in it (Azure's 32-hex keys, Mistral's
   32-character ones), unless a label right before it names an id (``trace_id=``, ``request id``);
4. the user-info part of a URL: ``https://user:pw@host``.

Speed: the regex engine skips quickly to the positions where a pattern can start only when every branch
of the pattern starts with a literal character (its "charset prefix"); an ``IGNORECASE`` literal or a
leading lookbehind turns that off and costs several times as much. So branches start with a literal,
pass 1 runs on a lower-cased copy, and word boundaries are checked on the few matches, not on every
position.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Final

REDACTED: Final = "[REDACTED]"
MAX_MESSAGE_LENGTH: Final = 1024

# Header names whose values never leave the process.
SECRET_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "ocp-apim-subscription-key",
        "cookie",
        "set-cookie",
    }
)

# 1. Run on the lower-cased text. A quoted value runs to its closing quote, an unquoted one to the next
# separator; an auth scheme in front of it stays readable. A cookie runs to the end of its line.
_NAMED: Final = re.compile(
    r"""
    (?P<name>
        api[_-]?key | apikey | x[_-]?api[_-]?key | ocp-apim-subscription-key | subscription[_-]?key
        | access[_-]?token | refresh[_-]?token | id[_-]?token | auth[_-]?token | session[_-]?token
        | bearer[_-]?token | token | secret | client[_-]?secret | secret[_-]?key | private[_-]?key
        | access[_-]?key | password | passwd | pwd | credentials? | authorization
        | proxy-authorization | signature | sig | key | (?P<cookie> cookie | set-cookie )
    )
    (?P<sep> \\?["']?\s*[:=]\s* )
    (?:
        (?(cookie) (?P<crumbs> [^"'\\\r\n]+ ) | (?!) )
        | \\?["'] (?P<quoted> [^"'\\\r\n]+ )
        | (?:(?:basic|bearer|digest|token)\s+)? (?P<bare> [^\s"'\\,;&{}\[\])>]+ )
    )
    """,
    re.VERBOSE,
)
_ASCII_LOWER: Final = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}

# 2. Keys with a vendor prefix, bearer tokens, JWTs, Google OAuth tokens; Basic credentials (checked).
_SHAPED: Final = re.compile(
    r"""
    sk-(?:ant-|proj-|or-)?[A-Za-z0-9_\-]{8,} | pk-[A-Za-z0-9_\-]{8,} | rk-[A-Za-z0-9_\-]{8,}
    | AIza[0-9A-Za-z_\-]{20,}
    | gsk_[A-Za-z0-9]{16,} | hf_[A-Za-z0-9]{16,} | r8_[A-Za-z0-9]{16,}
    | xai-[A-Za-z0-9]{16,} | pplx-[A-Za-z0-9]{16,}
    | ya29\.[0-9A-Za-z_\-.]{16,}
    | eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*
    | Bearer\s+[A-Za-z0-9._~+/=\-]{8,} | bearer\s+[A-Za-z0-9._~+/=\-]{8,}
    | Basic\s+(?P<basic>[A-Za-z0-9+/]{8,}={0,2}) | basic\s+(?P<lbasic>[A-Za-z0-9+/]{8,}={0,2})
    """,
    re.VERBOSE,
)

# 3. A run of 32+ letters and digits that is not part of a longer word, path, host name or prefixed id
# (``req_…``, ``cmpl-…``, a traceparent's ``00-…-…``).
_BARE: Final = re.compile(r"(?<![A-Za-z0-9_\-./+])[A-Za-z0-9]{32,}(?![A-Za-z0-9_\-/+])")
_DIGIT: Final = re.compile(r"[0-9]")
_LETTER: Final = re.compile(r"[A-Za-z]")
# A label right before the run that makes it an id: a trace id is 32 hex too.
_ID_LABEL: Final = re.compile(
    r"(?:(?:trace|span|request|req|correlation|response|completion|message|msg|generation|event|run)"
    r"[ _-]?id|[ _-]id|\bid|traceparent)\W{0,4}$",
    re.IGNORECASE,
)
_ID_LABEL_REACH: Final = 24

# 4. user:password@ (or a token as user name) in a URL.
_USERINFO: Final = re.compile(r"(?<=://)[^/\s@\"'<>?#]+@")

# A judge looks at one match: (start, end, True) redacts text[start:end]; (_, resume, False) keeps it
# and searches again from ``resume``.
_Judge = Callable[[str, re.Match[str]], tuple[int, int, bool]]


def _word_char(text: str, i: int) -> bool:
    return 0 <= i < len(text) and (text[i].isalnum() or text[i] == "_")


def _judge_named(text: str, match: re.Match[str]) -> tuple[int, int, bool]:
    start = match.start()
    if _word_char(text, start - 1) and not (text[start].isupper() and text[start - 1].islower()):
        return start, start + 1, False  # inside a word (``monkey=``), but not a camelCase part
    for group in ("crumbs", "quoted"):
        if match.start(group) != -1:
            return match.start(group), match.end(group), True
    if match.group("name") == "key" and "=" not in match.group("sep"):
        # ``key`` alone is a common word: ``missing required key: messages``. A query parameter, or a
        # quoted value (JSON, a Python dict), is a key.
        return start, start + 1, False
    return match.start("bare"), match.end("bare"), True


def _is_credentials(b64: str) -> bool:
    """``Basic`` credentials are base64 of ``user:password``; ``Basic authentication failed`` is not."""
    try:
        decoded = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return ":" in decoded and decoded.isprintable()


def _judge_shaped(text: str, match: re.Match[str]) -> tuple[int, int, bool]:
    start = match.start()
    if _word_char(text, start - 1):
        return start, start + 1, False  # ``disk-…``, ``task-…``: not a key prefix
    for group in ("basic", "lbasic"):
        credentials = match.group(group)
        if credentials is not None:
            if _is_credentials(credentials):
                return match.start(group), match.end(), True
            return start, match.end(), False
    return start, match.end(), True


def _judge_bare(text: str, match: re.Match[str]) -> tuple[int, int, bool]:
    start, end = match.span()
    run = match.group()
    if _DIGIT.search(run) is None or _LETTER.search(run) is None:
        return start, end, False  # a long word or a long number: neither is a key
    if _ID_LABEL.search(text, max(0, start - _ID_LABEL_REACH), start) is not None:
        return start, end, False
    return start, end, True


def _redact(text: str, pattern: re.Pattern[str], judge: _Judge, haystack: str | None = None) -> str:
    """Replace what ``judge`` accepts among the matches of ``pattern`` in ``haystack`` (default: ``text``;
    a lower-cased copy of the same length for pass 1) by ``REDACTED``."""
    search = pattern.search
    hay = text if haystack is None else haystack
    pieces: list[str] = []
    last = pos = 0
    while (match := search(hay, pos)) is not None:
        start, end, redact = judge(text, match)
        if redact:
            pieces.append(text[last:start])
            pieces.append(REDACTED)
            last = end
        pos = max(end, pos + 1)
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def scrub(text: str, *, max_length: int = MAX_MESSAGE_LENGTH) -> str:
    """Remove key-like strings from ``text`` and cap its length.

    Scrubbing runs before the final cut, so a key straddling the cut cannot leave a prefix behind; the
    text scrubbed is itself bounded (twice the cap: far longer than any key)."""
    text = text[: 2 * max_length]
    lowered = text.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer (``İ``): ASCII only then
        lowered = text.translate(_ASCII_LOWER)
    text = _redact(text, _NAMED, _judge_named, lowered)
    text = _redact(text, _SHAPED, _judge_shaped)
    text = _redact(text, _BARE, _judge_bare)
    if "@" in text:
        text = _USERINFO.sub(REDACTED + "@", text)
    return text[:max_length]
