"""Deployment logs: writing lines with per-deployment sequence numbers, reading them in
order without ever skipping a line that is still being written, and the SSE frames of
`GET .../logs/stream`.

Every line is made here (`line`, `pieces`), and that is where the deployment's secrets are
masked (masking.py): what is stored never holds them, whoever wrote it.

Writers reserve sequence numbers before they write (store/logs.py), so for a moment a
higher number can be stored while a lower one is still in flight. A reader therefore
hands out only the unbroken run after its cursor. A hole is stepped over only once it is
older than `log_gap_grace_s`: its writer died between reserving and writing. That is what
makes "every line once, in order" hold across any number of reconnects.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from chalicelib.core.clock import now_iso
from chalicelib.core.settings import get_settings
from chalicelib.deployments.env import masker_of
from chalicelib.deployments.masking import Masker
from chalicelib.deployments.models import LogLine
from chalicelib.deployments.status import ENDED
from chalicelib.store import deployments as deployment_store
from chalicelib.store import logs as store

MAX_MESSAGE = 8192
POLL_S = 0.2
COALESCE_S = 0.3


def line(mask: Masker, phase: str, message: str) -> dict[str, Any]:
    """One line before its seq is known (a status change's own line), secrets masked."""
    message = mask(message.rstrip("\n"))
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + " [truncated]"
    return _line(phase, message)


def pieces(mask: Masker, entries: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The lines of a writer's messages, secrets masked; a message longer than MAX_MESSAGE
    is masked whole, then cut into lines, so a cut never splits a secret."""
    lines = []
    for phase, text in entries:
        masked = mask(text.rstrip("\n"))
        for start in range(0, max(len(masked), 1), MAX_MESSAGE):
            lines.append(_line(phase, masked[start : start + MAX_MESSAGE]))
    return lines


def _line(phase: str, message: str) -> dict[str, Any]:
    return {"timestamp": now_iso(), "phase": phase, "message": message}


def append(project_id: str, deployment_id: str, entries: list[tuple[str, str]]) -> None:
    """Write lines now: one reservation, then one batch."""
    if not entries:
        return
    lines = pieces(masker_of({"id": deployment_id, "project_id": project_id}), entries)
    first = store.reserve(project_id, deployment_id, len(lines), ENDED)
    if first is None:
        return
    store.put_lines(deployment_id, [{**found, "seq": first + i} for i, found in enumerate(lines)])


class BufferedLog:
    """Collects the lines of a busy writer (a build's output) and writes them in batches:
    when `max_lines` are waiting or `interval_s` after the first waiting line, whichever
    comes first. `close()` writes what is left; lines that come after it are dropped (an
    app's output once its deployment has ended belongs to no deployment step)."""

    def __init__(
        self, project_id: str, deployment_id: str, interval_s: float = 0.2, max_lines: int = 25
    ) -> None:
        self.project_id = project_id
        self.deployment_id = deployment_id
        self.interval_s = interval_s
        self.max_lines = max_lines
        self._waiting: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._closed = False

    def __call__(self, phase: str, message: str) -> None:
        with self._lock:
            if self._closed:
                return
            self._waiting.append((phase, message))
            full = len(self._waiting) >= self.max_lines
            if not full and self._timer is None:
                self._timer = threading.Timer(self.interval_s, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if full:
            self.flush()

    def flush(self) -> None:
        # One writer at a time keeps this buffer's lines in the order they came.
        with self._write_lock:
            with self._lock:
                batch, self._waiting = self._waiting, []
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
            append(self.project_id, self.deployment_id, batch)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.flush()


@dataclass
class Batch:
    lines: list[dict[str, Any]]
    cursor: int  # the seq the next read starts after
    status: str
    complete: bool  # the deployment has ended and every line of it was handed out
    caught_up: bool  # every reserved line was handed out (or given up on)


def read(
    project_id: str, deployment_id: str, after: int, limit: int, item: dict | None = None
) -> Batch:
    """The next lines after `after`, in order and without holes still being filled.
    `item`: the deployment as just read (before its lines, as here), to save reading it
    again."""
    item = item or deployment_store.get(project_id, deployment_id)
    assert item is not None
    raw = store.read_after(deployment_id, after, limit)
    grace_ms = get_settings().log_gap_grace_s * 1000
    now_ms = deployment_store.now_ms()
    handed: list[dict[str, Any]] = []
    expected = after + 1
    for found in raw:
        if found["seq"] != expected and now_ms - found["written_ms"] < grace_ms:
            break
        handed.append(found)
        expected = found["seq"] + 1
    cursor = expected - 1
    reserved = item.get("log_seq", 0)
    whole_page_read = len(handed) == len(raw) and len(raw) < limit
    abandoned = now_ms - item.get("log_reserved_ms", 0) >= grace_ms
    if whole_page_read and reserved > cursor and abandoned:
        cursor = reserved
    complete = item["status"] in ENDED and whole_page_read and cursor >= reserved
    return Batch(handed, cursor, item["status"], complete, cursor >= reserved)


def to_model(found: dict[str, Any]) -> LogLine:
    return LogLine(
        seq=found["seq"],
        timestamp=found["timestamp"],
        phase=found["phase"],
        message=found["message"],
    )


def as_text(lines: list[dict[str, Any]]) -> str:
    return "".join(f"[{found['phase']}] {found['message']}\n" for found in lines)


def frame(data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n"


def stream(project_id: str, deployment_id: str, after: int, resumed: bool) -> tuple[int, str]:
    """The body of one SSE response and its status code.

    The response is assembled while waiting and returned whole (API Gateway and Chalice
    cannot hold a stream open). It returns as soon as there is something new (after a
    short pause that lets a burst of lines travel together), when the deployment is done
    (a `done` frame), or after the bounded wait (`sse_wait_s`) with nothing new. Every
    response starts with `retry:` so EventSource reconnects promptly with Last-Event-ID.
    A resumed stream of a deployment that has ended, with nothing left, is 204: that is
    what tells EventSource to stop.
    """
    settings = get_settings()
    started = time.monotonic()
    deadline = started + settings.sse_wait_s
    batch = read(project_id, deployment_id, after, 1000)
    if resumed and batch.complete and not batch.lines:
        return 204, ""
    frames = [
        f"retry: {settings.sse_retry_ms}\n\n",
        frame({"type": "status", "status": batch.status}),
    ]
    status = batch.status
    send_by: float | None = None
    while True:
        for found in batch.lines:
            frames.append(
                frame(
                    {
                        "type": "log",
                        "seq": found["seq"],
                        "phase": found["phase"],
                        "message": found["message"],
                        "timestamp": found["timestamp"],
                    },
                    found["seq"],
                )
            )
        # A new status goes after the line its change reserved (written right after the
        # change), so it follows the lines written before it.
        if batch.status != status and batch.caught_up:
            status = batch.status
            frames.append(frame({"type": "status", "status": status}))
        if batch.complete:
            frames.append(frame({"type": "done", "status": batch.status}))
            return 200, "".join(frames)
        now = time.monotonic()
        if send_by is None and (batch.lines or len(frames) > 2):
            # Something new: let the rest of a burst join it, briefly, then answer.
            send_by = now + COALESCE_S
        # Nor does a response end before that line: the client would show the status
        # (from the next response's opening frame) above it.
        if now >= deadline or (send_by is not None and now >= send_by and batch.caught_up):
            return 200, "".join(frames)
        due = deadline if send_by is None or send_by <= now else min(send_by, deadline)
        time.sleep(max(0.01, min(POLL_S, due - now)))
        batch = read(project_id, deployment_id, batch.cursor, 1000)
