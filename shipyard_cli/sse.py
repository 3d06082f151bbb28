"""A Server-Sent Events parser, as the WHATWG HTML standard's event stream
interpretation describes it: bytes go in as they arrive, in reads of any size, and
whole events come out."""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    type: str
    data: str
    last_event_id: str


class Parser:
    """Feed it the body of one response, chunk by chunk; it keeps `last_event_id` and
    `retry` (milliseconds) across responses, as an EventSource does for reconnects."""

    def __init__(self, last_event_id: str = "") -> None:
        self.last_event_id = last_event_id
        self.retry: int | None = None
        self._new_stream()

    def _new_stream(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._started = False
        self._after_cr = False
        self._data: list[str] = []
        self._type = ""
        self._id_buffer = self.last_event_id

    def reset(self) -> None:
        """Forget a half-received event: a new connection starts a new stream."""
        self._new_stream()

    def feed(self, chunk: bytes) -> list[Event]:
        text = self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        if not text:
            return []
        if self._after_cr and text.startswith("\n"):
            # The `\n` of a `\r\n` split across two reads.
            text = text[1:]
        self._after_cr = text.endswith("\r")
        events: list[Event] = []
        lines = (self._pending + text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._pending = lines.pop()
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> Event | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id":
            if "\0" not in value:
                self._id_buffer = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        self.last_event_id = self._id_buffer
        if not self._data:
            self._type = ""
            return None
        event = Event(self._type or "message", "\n".join(self._data), self.last_event_id)
        self._data = []
        self._type = ""
        return event
