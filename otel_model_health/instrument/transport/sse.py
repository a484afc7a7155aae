"""An incremental Server-Sent Events parser with bounded memory.

Fed the raw chunks in the order the caller reads them; returns the events completed by each chunk. A
line longer than ``MAX_LINE`` (or an event whose data grows past it) is dropped, never accumulated, so
a broken stream cannot grow memory. A line that is not UTF-8 sets ``invalid``: the SDKs decode every line
strictly and raise on it, so the caller's stream failed there.
"""

from __future__ import annotations

from typing import Final

MAX_LINE: Final = 1024 * 1024

Event = tuple[str | None, str]  # (event name, data)


class SSEParser:
    __slots__ = (
        "_cr",
        "_data",
        "_data_size",
        "_dropping",
        "_event",
        "_partial",
        "_partial_size",
        "dropped",
        "invalid",
    )

    def __init__(self) -> None:
        self._partial: list[bytes] = []  # the current unfinished line, in pieces
        self._partial_size = 0
        self._dropping = False  # the current line overflowed: skip to its end
        self._cr = False  # the last chunk ended with CR: a leading LF belongs to it
        self._event: str | None = None
        self._data: list[str] = []
        self._data_size = 0
        self.dropped = 0  # lines or events dropped for size
        self.invalid = False  # a line was not valid UTF-8

    def feed(self, chunk: bytes) -> list[Event]:
        events: list[Event] = []
        if not chunk:
            return events
        if self._cr or b"\r" in chunk:
            if self._cr and chunk[:1] == b"\n":
                chunk = chunk[1:]
            self._cr = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = len(chunk) - 2
        if (
            chunk[end:] == b"\n\n"
            and end <= MAX_LINE
            and not (
                self._partial or self._dropping or self._data or self._data_size or self._event is not None
            )
        ):
            # The usual chunk, as providers write them: one whole event, `data: ...` or `event: ...` then
            # `data: ...`, between events. Cut out directly rather than line by line.
            if chunk[:6] == b"data: ":
                if chunk.find(b"\n", 6) == end:
                    events.append((None, self._text(chunk[6:end])))
                    return events
            elif chunk[:7] == b"event: ":
                newline = chunk.find(b"\n", 7)
                if chunk[newline + 1 : newline + 7] == b"data: " and chunk.find(b"\n", newline + 1) == end:
                    name = self._text(chunk[7:newline])
                    events.append((name, self._text(chunk[newline + 7 : end])))
                    return events
        lines = chunk.split(b"\n")
        last = lines.pop()  # the unfinished tail (b"" when the chunk ended with a newline)
        for raw in lines:
            piece = raw
            if self._dropping:
                self._dropping = False
                self._partial.clear()
                self._partial_size = 0
                continue
            if self._partial:
                self._partial.append(raw)
                piece = b"".join(self._partial)
                self._partial.clear()
                self._partial_size = 0
            self._line(piece, events)
        if last and not self._dropping:
            self._partial_size += len(last)
            if self._partial_size > MAX_LINE:
                self._dropping = True
                self.dropped += 1
                self._partial.clear()
                self._partial_size = 0
            else:
                self._partial.append(last)
        return events

    def _line(self, line: bytes, events: list[Event]) -> None:
        if not line:
            if self._data:
                events.append((self._event, "\n".join(self._data)))
            self._event = None
            self._data = []
            self._data_size = 0
            return
        if line[:1] == b":":
            if not line.isascii():
                self._text(line)  # the SDKs decode comments too
            return  # comment / keep-alive
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data_size += len(value)
            if self._data_size > MAX_LINE:
                if self._data:
                    self.dropped += 1
                self._data = []
                return
            self._data.append(self._text(value))
        elif name == b"event":
            self._event = self._text(value)
        elif not line.isascii():
            self._text(line)

    def _text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.invalid = True
            return raw.decode("utf-8", "replace")

    def close(self) -> list[Event]:
        """End of stream: a final event without its blank line is still delivered (as browsers do not,
        but the SDKs' decoders do)."""
        events: list[Event] = []
        if self._partial and not self._dropping:
            line = b"".join(self._partial)
            self._partial.clear()
            self._line(line, events)
        self._line(b"", events)
        return events
