"""A local deployment's runtime log: the app's stdout and stderr (phase `app`) and the
supervisor's lines about it (phase `runtime`), numbered and timestamped, in one file per
deployment under `<state_dir>/runtime-logs/`.

The app writes its raw output to its own file (runtimes/local.py); one copier thread turns
the new complete lines of every followed deployment into numbered lines here. Each copied
batch records how far into the raw file it got, so a restarted process continues where the
last one stopped: across restarts of the app or of the local stack no line is copied twice
or skipped. A supervisor line is written after everything the app printed before it.

A flood is kept up with while a copy pass can read it; what is beyond `MAX_PASS_BYTES`
behind is skipped and replaced by one `[N lines dropped]` line, never silently.
Retention: a line is kept while it is one of the last `KEEP_LINES` or younger than
`KEEP_S`, and never beyond the last `HARD_CAP` lines. The file is compacted on the way when
it passes `HARD_CAP`, and every `EXPIRE_EVERY_S` the copier expires what is older than
`KEEP_S` in every deployment's log, stopped deployments' included.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from chalicelib.core.clock import now_iso, parse_rfc3339
from chalicelib.ports import Mask

KEEP_LINES = 10_000
KEEP_S = 7 * 24 * 3600
HARD_CAP = 200_000
MAX_PASS_BYTES = 32 * 1024 * 1024
MAX_LINE = 8192
EXPIRE_EVERY_S = 3600.0
_EVERY_S = 0.1


class RuntimeLogs:
    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir) / "runtime-logs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._followed: dict[str, Path] = {}
        self._tails: dict[str, tuple[int, int, int]] = {}  # seq, raw offset, lines in file
        self._wake = threading.Event()
        # Where the line after a seq starts, remembered from the last reads: a reader
        # paging through a long log seeks instead of scanning from the start.
        self._positions: dict[tuple[str, int], int] = {}
        self._thread: threading.Thread | None = None
        self._masks: dict[str, Mask] = {}
        # The size each log had when expire() last found nothing left to expire in it.
        self._expired_sizes: dict[str, int] = {}

    def follow(self, deployment_id: str, raw_path: Path, mask: Mask | None = None) -> None:
        """Copy the app's raw output file into this log from now on (idempotent); every
        line, the supervisor's included, goes through `mask` before it is stored."""
        with self._lock:
            self._followed[deployment_id] = Path(raw_path)
            if mask is not None:
                self._masks[deployment_id] = mask
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="runtime-logs", daemon=True)
                self._thread.start()

    def unfollow(self, deployment_id: str) -> None:
        """Copy what is left of the app's output, then stop following it."""
        with self._lock:
            raw = self._followed.pop(deployment_id, None)
            if raw is not None:
                self._copy(deployment_id, raw)

    def note(self, deployment_id: str, message: str, raw_path: Path | None = None) -> None:
        """A supervisor line, after everything the app printed so far."""
        with self._lock:
            raw = self._followed.get(deployment_id) or raw_path
            if raw is not None:
                self._copy(deployment_id, raw)
            self._append(deployment_id, [("runtime", message)], None)

    def read(self, deployment_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` lines with seq > after, in order."""
        found: list[dict[str, Any]] = []
        try:
            handle = self._path(deployment_id).open("rb")
        except FileNotFoundError:
            return found
        with handle:
            position = self._positions.get((deployment_id, after), 0)
            handle.seek(position)
            while raw := handle.readline():
                if not raw.endswith(b"\n"):
                    break  # being written: read again from its start next time
                position += len(raw)
                seq_text, rest = raw.split(b"\t", 1)
                seq = int(seq_text)
                if seq <= after:
                    continue
                timestamp, phase, _, message = rest.decode("utf-8", "replace").split("\t", 3)
                found.append(
                    {"seq": seq, "timestamp": timestamp, "phase": phase, "message": message[:-1]}
                )
                if len(found) >= limit:
                    break
            if found:
                if len(self._positions) > 1000:
                    self._positions.clear()
                self._positions[(deployment_id, found[-1]["seq"])] = position
        return found

    def expire(self) -> None:
        """Drop the lines older than KEEP_S that are not among the last KEEP_LINES, in
        every deployment's log (a log that has not changed since its last pass is skipped)."""
        now = parse_rfc3339(now_iso())
        for path in sorted(self.dir.glob("*.tsv")):
            deployment_id = path.stem
            with self._lock:
                try:
                    size = path.stat().st_size
                    with path.open("rb") as handle:
                        first = handle.readline()
                except FileNotFoundError:
                    continue
                if self._expired_sizes.get(deployment_id) == size or not first.endswith(b"\n"):
                    continue
                oldest = parse_rfc3339(first.split(b"\t", 2)[1].decode())
                if (now - oldest).total_seconds() >= KEEP_S:
                    self._tail(deployment_id)
                    self._compact(deployment_id)
                self._expired_sizes[deployment_id] = path.stat().st_size

    def _run(self) -> None:
        expire_at = 0.0
        while True:
            self._wake.wait(_EVERY_S)
            if time.monotonic() >= expire_at:
                expire_at = time.monotonic() + EXPIRE_EVERY_S
                with contextlib.suppress(OSError, ValueError):  # the next pass tries again
                    self.expire()
            with self._lock:
                for deployment_id, raw in list(self._followed.items()):
                    try:
                        self._copy(deployment_id, raw)
                    except OSError:
                        continue  # the raw file is not there yet, or went with its project

    def _copy(self, deployment_id: str, raw_path: Path) -> None:
        _, offset, _ = self._tail(deployment_id)
        try:
            size = raw_path.stat().st_size
        except FileNotFoundError:
            return
        if size <= offset:
            return
        entries: list[tuple[str, str]] = []
        with raw_path.open("rb") as handle:
            if size - offset > MAX_PASS_BYTES:
                # Too far behind: skip to the newest MAX_PASS_BYTES, counting what is skipped.
                skip_to = size - MAX_PASS_BYTES
                handle.seek(offset)
                dropped = 0
                chunk = b""
                while handle.tell() < skip_to:
                    chunk = handle.read(min(1 << 20, skip_to - handle.tell()))
                    dropped += chunk.count(b"\n")
                # The line the skip landed in goes too: the copy starts on a line's start.
                if not chunk.endswith(b"\n"):
                    rest = handle.read(size - skip_to)
                    cut = rest.find(b"\n")
                    skip_to += len(rest) if cut < 0 else cut + 1
                    dropped += 1
                entries.append(("runtime", f"[{dropped} lines dropped]"))
                offset = skip_to
            handle.seek(offset)
            data = handle.read(size - offset)
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) < MAX_LINE:
                if entries:
                    self._append(deployment_id, entries, offset)
                return
            end = len(data) - 1
        for line in data[: end + 1].split(b"\n")[:-1]:
            text = line.decode("utf-8", "replace").rstrip("\r").replace("\t", "    ")
            entries.append(("app", text[:MAX_LINE]))
        self._append(deployment_id, entries, offset + end + 1)

    def _append(
        self, deployment_id: str, entries: list[tuple[str, str]], raw_offset: int | None
    ) -> None:
        seq, offset, count = self._tail(deployment_id)
        offset = offset if raw_offset is None else raw_offset
        now = now_iso()
        mask = self._masks.get(deployment_id)
        lines = []
        for phase, message in entries:
            if mask is not None:
                message = mask(message)
            seq += 1
            lines.append(f"{seq}\t{now}\t{phase}\t{offset}\t{message}\n")
        with self._path(deployment_id).open("a", encoding="utf-8") as handle:
            handle.write("".join(lines))
        count += len(lines)
        self._tails[deployment_id] = (seq, offset, count)
        if count > HARD_CAP + KEEP_LINES:
            self._compact(deployment_id)

    def _tail(self, deployment_id: str) -> tuple[int, int, int]:
        """(last seq, raw offset copied up to, lines in the file), read from the file once."""
        known = self._tails.get(deployment_id)
        if known is not None:
            return known
        seq = offset = count = 0
        try:
            with self._path(deployment_id).open("rb") as handle:
                for raw in handle:
                    if raw.endswith(b"\n"):
                        fields = raw.split(b"\t", 4)
                        seq, offset = int(fields[0]), int(fields[3])
                        count += 1
        except FileNotFoundError:
            pass
        self._tails[deployment_id] = (seq, offset, count)
        return seq, offset, count

    def _compact(self, deployment_id: str) -> None:
        """Expire lines: keep the last KEEP_LINES, and younger ones up to HARD_CAP."""
        path = self._path(deployment_id)
        lines = path.read_bytes().splitlines(keepends=True)
        now = parse_rfc3339(now_iso())
        kept = lines[-HARD_CAP:]
        cut = 0
        for index, raw in enumerate(kept[:-KEEP_LINES]):
            timestamp = raw.split(b"\t", 2)[1].decode()
            if (now - parse_rfc3339(timestamp)).total_seconds() < KEEP_S:
                break
            cut = index + 1
        if cut == 0 and len(kept) == len(lines):
            return
        kept = kept[cut:]
        partial = path.with_suffix(".partial")
        partial.write_bytes(b"".join(kept))
        with self._lock:
            os.replace(partial, path)
            self._positions = {k: v for k, v in self._positions.items() if k[0] != deployment_id}
        seq, offset, _ = self._tails[deployment_id]
        self._tails[deployment_id] = (seq, offset, len(kept))

    def _path(self, deployment_id: str) -> Path:
        return self.dir / f"{deployment_id}.tsv"
