"""The logs of what runs, read through the runtime port: a deployment's runtime log (its
app's output and the supervisor's lines) and a project's access log (the requests its URL
served), as pages after a seq and as SSE responses with the build log's frames and
reconnect rules (deployments/logs.py). A runtime log is done once its deployment has
stopped and its app is gone; an access log is never done."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib.core.settings import get_settings
from chalicelib.deployments.logs import COALESCE_S, POLL_S, frame
from chalicelib.pipeline import engines
from chalicelib.store import deployments as store

STOPPED = ("stopped", "failed", "canceled")
PAGE = 1000


def runtime_page(
    project_id: str, deployment_id: str, after: int, limit: int
) -> tuple[list[dict[str, Any]], str, bool]:
    """(lines after `after`, the deployment's status, whether the log is complete)."""
    item = store.get(project_id, deployment_id)
    assert item is not None
    apps = engines.apps()
    lines = apps.runtime_logs(item, after, limit)
    complete = (
        item["status"] in STOPPED
        and len(lines) < limit
        and not (item.get("url") and apps.alive(item)[0])
    )
    return lines, item["status"], complete


def access_page(project_id: str, after: int, limit: int) -> list[dict[str, Any]]:
    return engines.apps().access_logs(project_id, after, limit)


def as_text(lines: list[dict[str, Any]]) -> str:
    return "".join(f"[{line['phase']}] {line['message']}\n" for line in lines)


def stream_runtime(project_id: str, deployment_id: str, after: int, resumed: bool):
    def read(cursor: int) -> tuple[list[dict[str, Any]], str | None, bool]:
        return runtime_page(project_id, deployment_id, cursor, PAGE)

    return _stream(read, after, resumed, "log")


def stream_access(project_id: str, after: int, resumed: bool):
    def read(cursor: int) -> tuple[list[dict[str, Any]], str | None, bool]:
        return access_page(project_id, cursor, PAGE), None, False

    return _stream(read, after, resumed, "access")


def _stream(
    read: Callable[[int], tuple[list[dict[str, Any]], str | None, bool]],
    after: int,
    resumed: bool,
    kind: str,
) -> tuple[int, str]:
    """One SSE response (status code, body), as deployments/logs.stream assembles it."""
    settings = get_settings()
    deadline = time.monotonic() + settings.sse_wait_s
    lines, status, complete = read(after)
    if resumed and complete and not lines:
        # The done frame's id is one past the last line: a client that saw `done` comes
        # back after it, and is told the stream is over. One that saw the last line but
        # not `done` (the log was completed between two responses) gets `done` now.
        last = read(max(after - 1, 0))[0][:1]
        if not (last and last[0]["seq"] == after):
            return 204, ""
    frames = [f"retry: {settings.sse_retry_ms}\n\n"]
    if status is not None:
        frames.append(frame({"type": "status", "status": status}))
    opening = len(frames)
    cursor = after
    send_by: float | None = None
    while True:
        for line in lines:
            frames.append(frame({"type": kind, **line}, line["seq"]))
            cursor = line["seq"]
        if complete:
            frames.append(frame({"type": "done", "status": status}, cursor + 1))
            return 200, "".join(frames)
        now = time.monotonic()
        if send_by is None and len(frames) > opening:
            send_by = now + COALESCE_S
        if now >= deadline or (send_by is not None and now >= send_by):
            return 200, "".join(frames)
        time.sleep(min(POLL_S, deadline - now, (send_by or deadline) - now))
        lines, status, complete = read(cursor)
