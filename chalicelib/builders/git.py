"""The git step of a local build: a shallow clone of exactly one commit into the build's
source directory, before the build plan is made from what it holds.

Each git command is a subprocess of its own process group (never a shell; the URL and the
sha come after `--` or as plain arguments), with git's clean environment
(git/remote.py `git_env`), under the build's deadline, stopped at once on a cancel. What
git prints goes to the build log with any credentials of the URL redacted. The builds'
sandbox (builders/local.py) runs the build's commands; the clone runs before them, with
no project env at all.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from chalicelib.git.refs import SHA, redact
from chalicelib.git.remote import Unreachable, check_outbound, git_env, pin
from chalicelib.host.processes import kill_group, stop_process

POLL_S = 0.05
KILL_GRACE_S = 1.0
MAX_OUTPUT = 64 * 1024


class CloneFailed(Exception):
    """The clone did not give the commit: `code` is build_failed, timed_out or canceled."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Checkout:
    sha: str
    message: str  # the commit message's first line


def checkout(url: str, sha: str, dest: Path, deadline: float, cancel: threading.Event) -> Checkout:
    """Clone `url` at `sha` (a full sha, resolved before) into `dest`, without its `.git`."""
    if not SHA.match(sha):
        raise CloneFailed("build_failed", "the commit to clone is not a full sha")
    try:
        entry = pin(url, check_outbound(url))
    except Unreachable as error:
        raise CloneFailed("build_failed", f"The repository is unreachable: {error}") from None
    # git connects to the addresses that were checked, nowhere else.
    pinned = ["-c", f"http.curloptResolve={entry}"] if entry else []
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="git-home-") as home:
        env = git_env(home)
        run = _Runner(env, deadline, cancel)
        run(["git", "init", "--quiet", str(dest)], "prepare the clone")
        run(
            [
                "git",
                "-C",
                str(dest),
                "-c",
                "http.followRedirects=false",
                *pinned,
                "fetch",
                "--quiet",
                "--depth=1",
                "--no-tags",
                "--",
                url,
                sha,
            ],
            f"fetch commit {sha[:12]} from {redact(url)}",
        )
        run(["git", "-C", str(dest), "checkout", "--quiet", "--detach", "FETCH_HEAD"], "check out")
        subject = run(["git", "-C", str(dest), "log", "-1", "--format=%s", "FETCH_HEAD"], "read")
    shutil.rmtree(dest / ".git", ignore_errors=True)
    return Checkout(sha, subject.strip().splitlines()[0][:300] if subject.strip() else "")


class _Runner:
    def __init__(self, env: dict[str, str], deadline: float, cancel: threading.Event) -> None:
        self.env = env
        self.deadline = deadline
        self.cancel = cancel

    def __call__(self, argv: list[str], what: str) -> str:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                process = subprocess.Popen(
                    argv,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
            except FileNotFoundError:
                raise CloneFailed("build_failed", "git is not installed where this runs") from None
            try:
                stopped = self._wait(process)
            finally:
                kill_group(process.pid)
            out.seek(0)
            err.seek(0)
            output = out.read(MAX_OUTPUT).decode("utf-8", "replace")
            errors = err.read(MAX_OUTPUT).decode("utf-8", "replace").strip()
        if stopped == "canceled":
            raise CloneFailed("canceled", "the build was canceled")
        if stopped == "timed_out":
            raise CloneFailed("timed_out", f"The clone timed out: could not {what} in time")
        if process.returncode != 0:
            last = (
                errors.splitlines()[-1] if errors else f"git exited with code {process.returncode}"
            )
            raise CloneFailed("build_failed", f"The clone failed: could not {what}: {redact(last)}")
        return output

    def _wait(self, process: subprocess.Popen) -> str | None:
        while process.poll() is None:
            if self.cancel.is_set():
                stop_process(process, KILL_GRACE_S)
                return "canceled"
            if time.monotonic() > self.deadline:
                stop_process(process, KILL_GRACE_S)
                return "timed_out"
            time.sleep(POLL_S)
        return None
