"""What the CLI prints. Progress, log lines and errors go to stderr; a command's result
(a deployment's URL, a table, JSON) goes to stdout, so `URL=$(shipyard deploy ...)`
works."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from shipyard_cli.api import ApiError
from shipyard_cli.follow import LogLine


def human_size(size: float) -> str:
    if size < 1024:
        return f"{size:.0f} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


class Output:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.started = time.monotonic()
        self.tty = self.err.isatty()
        self._progress_shown = -1

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def info(self, message: str) -> None:
        print(message, file=self.err, flush=True)

    def result(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def json(self, value: Any) -> None:
        print(json.dumps(value, indent=2), file=self.out, flush=True)

    def log_line(self, line: LogLine) -> None:
        self.info(f"[{self.elapsed():6.1f}s] {line.phase:<6} | {line.message}")

    def status(self, status: str) -> None:
        self.info(f"[{self.elapsed():6.1f}s] status | {status}")

    def progress(self, label: str, done: int, total: int) -> None:
        """A progress line, redrawn in place on a terminal, in quarters elsewhere."""
        percent = 100 * done // total if total else 100
        text = f"{label} {human_size(done)} / {human_size(total)} ({percent}%)"
        if self.tty:
            end = "\n" if done >= total else ""
            print(f"\r{text}", end=end, file=self.err, flush=True)
        elif percent // 25 > self._progress_shown:
            self._progress_shown = percent // 25
            self.info(text)

    def error(self, error: ApiError) -> None:
        code = f" ({error.code})" if error.code else ""
        self.info(f"error: {error.message}{code}")
        fields = (error.details or {}).get("fields")
        if isinstance(fields, dict):
            for name, problems in fields.items():
                self.info(f"  {name}: {'; '.join(map(str, problems))}")
        if error.hint:
            self.info(f"hint: {error.hint}")

    def table(self, rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
        cells = [[str(h).upper() for h in headers]] + [
            ["" if c is None else str(c) for c in row] for row in rows
        ]
        widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
        for row in cells:
            self.result("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
