"""A local deployment's log file, read back: following it line by line into on_log while
the app runs (LogTailer), and the last lines and the way the app ended, for the message of
a failed start."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from chalicelib.core.log import logger
from chalicelib.ports import MAX_LOG_LINE, OnLog

_READ_EVERY_S = 0.1
_TAIL_LINES = 20


class LogTailer:
    """Follows a log file from an offset and hands each complete line to on_log."""

    def __init__(self, path: Path, offset: int, on_log: OnLog, alive: Callable[[], bool]) -> None:
        self._path = path
        self._offset = offset
        self._on_log = on_log
        self._alive = alive
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"log-{path.stem}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        pending = b""
        with self._path.open("rb") as handle:
            handle.seek(self._offset)
            while True:
                ended = self._stopped.is_set() or not self._alive()
                # Read after checking: what the app wrote before it ended is all there now.
                while chunk := handle.read(65536):
                    pending = self._emit(pending + chunk)
                if ended:
                    break
                self._stopped.wait(_READ_EVERY_S)
        if pending:
            self._send(pending)

    def _emit(self, data: bytes) -> bytes:
        *lines, rest = data.split(b"\n")
        for line in lines:
            self._send(line)
        if len(rest) >= MAX_LOG_LINE:
            self._send(rest)
            return b""
        return rest

    def _send(self, line: bytes) -> None:
        for start in range(0, max(len(line), 1), MAX_LOG_LINE):
            piece = line[start : start + MAX_LOG_LINE]
            try:
                self._on_log("deploy", piece.decode("utf-8", "replace").rstrip("\r"))
            except Exception:
                # The app's log is best effort: a failing sink must not stop the following.
                logger().exception("on_log failed", extra={"log_path": str(self._path)})


def how_it_ended(code: int) -> str:
    if code < 0:
        return f"was killed by signal {signal.Signals(-code).name}"
    return f"exited with code {code}"


def exit_message(code: int, lines: list[str]) -> str:
    message = f"the app {how_it_ended(code)} at start"
    if not lines:
        return message + " without any output"
    return message + "; its last output:\n" + "\n".join(lines)


def last_lines(log_path: Path, offset: int) -> list[str]:
    with log_path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(offset, size - 64 * 1024))
        text = handle.read().decode("utf-8", "replace")
    return [line for line in text.splitlines() if line.strip()][-_TAIL_LINES:]
