"""Following a deployment's log until it ends: the SSE stream, reconnecting as an
EventSource does (`Last-Event-ID`, the server's `retry:`), and stopping on the `done`
frame or a 204; polling `GET .../logs?after=` instead where the stream isn't served."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipyard_cli.api import ApiError, Client
from shipyard_cli.sse import Event, Parser

# A deployment that reached one of these has nothing more to build or deploy.
FINAL_STATUSES = frozenset({"running", "failed", "stopped", "canceled"})
DEFAULT_RETRY_MS = 1000
POLL_INTERVAL_S = 1.0
# `has_more` with no lines: a line is numbered but still being written (for a moment; the
# server steps over one whose writer died after its grace, 5 s by default). `read_all`
# gives up after LINE_WAITS such pages; following a log waits as long as the server says.
LINE_WAIT_S = 0.2
LINE_WAITS = 50
MAX_FAILED_CONNECTIONS = 5
# Answers that mean "no stream here" (an older server or a proxy), not "no deployment".
NO_STREAM_STATUS = frozenset({404, 405, 406, 501})


@dataclass(frozen=True)
class LogLine:
    seq: int
    phase: str
    message: str
    timestamp: str | None = None


@dataclass
class Follower:
    client: Client
    project_id: str
    deployment_id: str
    on_line: Callable[[LogLine], None]
    on_status: Callable[[str], None]
    sleep: Callable[[float], None] = field(default=time.sleep)
    last_seq: int = 0
    last_status: str | None = None
    connections: int = 0
    # Status changes seen but not printed yet: a response opens with the status as it is
    # then, so it is shown after the lines that led to it, at the end of the response.
    unshown: list[str] = field(default_factory=list)
    # "logs" (build, deploy, system) or "runtime-logs" (the app's own output)
    kind: str = "logs"

    @property
    def path(self) -> str:
        return f"/v1/projects/{self.project_id}/deployments/{self.deployment_id}/{self.kind}"

    def follow(self, after: int | None = None) -> str | None:
        """Print the log from after `after` to the end; the final status if it was told."""
        self.last_seq = after or 0
        parser = Parser()
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            query = None
            if parser.last_event_id:
                headers["Last-Event-ID"] = parser.last_event_id
            elif after is not None:
                query = {"after": after}
            try:
                response = self.client.open_stream(self.path + "/stream", query, headers)
            except ApiError as error:
                if self.connections == 0 and error.status in NO_STREAM_STATUS:
                    return self.poll()
                failures = self._failed(error, failures)
                continue
            with response:
                if response.status == 204:
                    return None
                content_type = response.headers.get("Content-Type", "")
                if not content_type.startswith("text/event-stream"):
                    if self.connections == 0:
                        return self.poll()
                    raise ApiError(f"the log stream answered {content_type}", "bad_stream")
                self.connections += 1
                parser.reset()
                try:
                    final = self._read(response, parser)
                except (OSError, http.client.HTTPException) as error:
                    failures = self._failed(
                        ApiError(f"the log stream broke: {error}", "connection_error"), failures
                    )
                    continue
                if final is not None:
                    return final
                failures = 0
            self.sleep((parser.retry if parser.retry is not None else DEFAULT_RETRY_MS) / 1000)

    def _failed(self, error: ApiError, failures: int) -> int:
        retryable = error.code in ("connection_error", "timeout") or (error.status or 0) >= 500
        if not retryable or failures + 1 >= MAX_FAILED_CONNECTIONS:
            raise error
        self.sleep(min(2.0**failures, 8.0))
        return failures + 1

    def _read(self, response: Any, parser: Parser) -> str | None:
        try:
            while chunk := response.read1(64 * 1024):
                for event in parser.feed(chunk):
                    final = self._event(event)
                    if final is not None:
                        return final
            return None
        finally:
            self._show_statuses()

    def _event(self, event: Event) -> str | None:
        try:
            frame = json.loads(event.data)
        except ValueError:
            return None
        if not isinstance(frame, dict):
            return None
        kind = frame.get("type")
        if kind == "log":
            self._line(frame)
        elif kind == "status":
            self._status(frame.get("status"))
        elif kind == "done":
            self._status(frame.get("status"))
            return frame.get("status") or "unknown"
        return None

    def _line(self, item: dict[str, Any]) -> None:
        seq = item.get("seq")
        # Lines arrive once each by contract; this only keeps a misbehaving proxy's
        # replays from being printed twice.
        if not isinstance(seq, int) or seq <= self.last_seq:
            return
        self.last_seq = seq
        self.on_line(
            LogLine(seq, item.get("phase", ""), item.get("message", ""), item.get("timestamp"))
        )

    def _status(self, status: str | None) -> None:
        if status and status != self.last_status:
            self.last_status = status
            self.unshown.append(status)

    def _show_statuses(self) -> None:
        for status in self.unshown:
            self.on_status(status)
        self.unshown.clear()

    def poll(self) -> str:
        """Follow by polling `GET .../logs?after=` until the deployment is final."""
        while True:
            page = self.client.get(self.path, {"after": self.last_seq or None, "limit": 1000})
            for item in page.get("data", []):
                self._line(item)
            status = page.get("status")
            self._status(status)
            if page.get("pagination", {}).get("has_more"):
                # The status is shown below the lines before it, once they are read.
                if not page.get("data"):
                    self.sleep(LINE_WAIT_S)
                continue
            self._show_statuses()
            if status in FINAL_STATUSES:
                return status
            self.sleep(POLL_INTERVAL_S)


def read_all(
    client: Client,
    project_id: str,
    deployment_id: str,
    kind: str = "logs",
    sleep: Callable[[float], None] = time.sleep,
) -> list[LogLine]:
    """The whole log (`logs` or `runtime-logs`) as it is now, page by page."""
    path = f"/v1/projects/{project_id}/deployments/{deployment_id}/{kind}"
    lines: list[LogLine] = []
    after = None
    waits = 0
    while True:
        page = client.get(path, {"after": after, "limit": 1000})
        for item in page.get("data", []):
            lines.append(
                LogLine(item["seq"], item["phase"], item["message"], item.get("timestamp"))
            )
            after = item["seq"]
        if not page.get("pagination", {}).get("has_more"):
            return lines
        if not page.get("data"):
            waits += 1
            if waits > LINE_WAITS:
                return lines
            sleep(LINE_WAIT_S)
