"""LocalBuilder, and LocalBuildEngine (the build port of the local stack) around it.

It unpacks the uploaded source (through inspect_archive) into a fresh temp dir, makes the
build plan, runs the plan's install and build commands as shell subprocesses in their own
process group, with the project's env in a clean environment (no AWS or Shipyard
credentials of this process leak into a build), streams every output line as it comes,
and packs and uploads the artifact. A timeout or a cancel kills the whole process group.
Each command runs in the build's sandbox (host/sandbox.py): only its work directory,
writable, and no network but an HTTPS proxy that keeps it off this machine (host/egress.py).
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from chalicelib.archive import artifacts
from chalicelib.archive.inspect import InvalidArchive, inspect_archive
from chalicelib.aws.clients import client
from chalicelib.buildplan.model import BUILD_ENV, BuildPlan, PlanError
from chalicelib.buildplan.plan import make_plan
from chalicelib.core.log import logger
from chalicelib.core.settings import get_settings
from chalicelib.host import sandbox
from chalicelib.host.egress import PROXY_PORT, EgressProxy
from chalicelib.host.processes import kill_group, stop_process
from chalicelib.ports import MAX_LOG_LINE, BuildJob, BuildOutcome, OnFinished, OnLog

# Passed through from this process: what finds the toolchains and nothing that names an
# identity. Everything else a build sees is BUILD_ENV and the project's env.
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
KILL_GRACE_S = 1.0
DRAIN_GRACE_S = 2.0
POLL_S = 0.05
SANDBOX_RUN = Path("/run/shipyard")
EGRESS_SOCKET = "egress.sock"
# In the build's sandbox: the way out (host/egress.py) on 127.0.0.1:PROXY_PORT, then the
# command in a shell.
_WITH_EGRESS = (
    f'socat TCP-LISTEN:{PROXY_PORT},bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:"$1" '
    '2>/dev/null & exec /bin/sh -c "$2"'
)
PROXY_URL = f"http://127.0.0.1:{PROXY_PORT}"


@dataclass
class _Sandbox:
    """Where a build's commands run: its user, limits, the directories it sees and its
    way out."""

    uid: int
    limits: sandbox.Limits
    mounts: list[sandbox.Mount]
    run: Path
    egress: EgressProxy


class _Failed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class LocalBuilder:
    def __init__(self, work_root: Path) -> None:
        self.work_root = Path(work_root)

    def build(self, job: BuildJob, on_log: OnLog, cancel: threading.Event) -> BuildOutcome:
        """Run one build synchronously; never raises for a failure of the build itself."""
        self.work_root.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f"{job.deployment_id}-", dir=self.work_root))
        plan: BuildPlan | None = None
        box: _Sandbox | None = None
        try:
            try:
                limits = sandbox.limits()
            except sandbox.Unsandboxed as error:
                raise _Failed("internal_error", str(error)) from None
            plan, app_dir = self._prepare(job, workdir, on_log)
            deadline = time.monotonic() + job.timeout_s
            env = _clean_env(workdir, job.env)
            if limits is not None:
                box = _sandbox_for(job.deployment_id, workdir, limits)
                env.update(HTTPS_PROXY=PROXY_URL, HTTP_PROXY=PROXY_URL, NO_PROXY="")
                env.update(https_proxy=PROXY_URL, http_proxy=PROXY_URL, no_proxy="")
                env["PATH"] = sandbox.search_path(env["PATH"])
            for step, command in plan.commands():
                _check_canceled(cancel)
                on_log("system", f"Running the {step} command: {command}")
                _run(command, app_dir, env, on_log, cancel, deadline, job.timeout_s, step, box)
            _check_canceled(cancel)
            key = artifacts.artifact_key(job.project_id, job.deployment_id)
            include, exclude = plan.artifact_content()
            try:
                artifacts.pack_and_upload(app_dir, key, include, exclude)
            except artifacts.ArtifactError as error:
                raise _Failed("build_failed", str(error)) from None
            on_log("system", "Build succeeded; artifact uploaded")
            return BuildOutcome(True, plan, key, None, None)
        except _Failed as failure:
            on_log("system", failure.message)
            return BuildOutcome(False, plan, None, failure.code, failure.message)
        except Exception:
            # The boundary of a build: whatever broke is reported as internal, never leaked.
            logger().exception("local build failed", deployment_id=job.deployment_id)
            message = "the build failed because of an internal error"
            on_log("system", message)
            return BuildOutcome(False, plan, None, "internal_error", message)
        finally:
            if box is not None:
                box.egress.close()
                _remove_tree(box.run)
            _remove_tree(workdir)

    def _prepare(self, job: BuildJob, workdir: Path, on_log: OnLog) -> tuple[BuildPlan, Path]:
        source = workdir / "source"
        for name in ("home", "tmp"):
            (workdir / name).mkdir()
        on_log("system", "Unpacking and checking the archive")
        body = client("s3").get_object(Bucket=get_settings().bucket, Key=job.source_key)["Body"]
        try:
            report = inspect_archive(body, source)
        except InvalidArchive as error:
            message = f"Invalid archive ({error.rule}): {error.message}"
            raise _Failed("invalid_archive", message) from None
        finally:
            body.close()
        on_log(
            "system",
            f"Archive OK: {report.entries} entries, {report.unpacked_bytes} bytes unpacked",
        )
        try:
            plan = make_plan(report.files, job.project_runtime, job.build, job.run)
        except PlanError as error:
            raise _Failed("build_failed", f"Cannot plan the build: {error}") from None
        app_dir = source / plan.root_directory if plan.root_directory else source
        if app_dir.is_symlink() or not app_dir.is_dir():
            raise _Failed(
                "build_failed",
                f"the root directory '{plan.root_directory}' is not a directory of the archive",
            )
        on_log(
            "system",
            f"Build plan: runtime {plan.runtime}, framework {plan.framework or 'none'}"
            + (f", root directory {plan.root_directory}" if plan.root_directory else ""),
        )
        return plan, app_dir


def _sandbox_for(deployment_id: str, workdir: Path, limits: sandbox.Limits) -> _Sandbox:
    """The build's sandbox: its working directory, writable and its user's own, and a
    directory of Shipyard's (read-only to it) with the socket of its way out."""
    uid = sandbox.uid_for(deployment_id)
    sandbox.give_to(workdir, uid)
    # In the machine's temp directory: a Unix socket's path is limited to 107 bytes.
    run = Path(tempfile.mkdtemp(prefix="shipyard-egress-"))
    run.chmod(0o755)
    egress = EgressProxy(run / EGRESS_SOCKET)
    (run / EGRESS_SOCKET).chmod(0o666)
    mounts = [sandbox.Mount(workdir, workdir, writable=True), sandbox.Mount(run, SANDBOX_RUN)]
    return _Sandbox(uid, limits, mounts, run, egress)


def _check_canceled(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise _Failed("canceled", "the build was canceled")


def _clean_env(workdir: Path, project_env: dict[str, str]) -> dict[str, str]:
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    env.update(BUILD_ENV)
    env.update(HOME=str(workdir / "home"), TMPDIR=str(workdir / "tmp"))
    env.update(project_env)
    return env


def _run(
    command: str,
    cwd: Path,
    env: dict[str, str],
    on_log: OnLog,
    cancel: threading.Event,
    deadline: float,
    timeout_s: int,
    step: str,
    box: _Sandbox | None,
) -> None:
    """Run one shell command (in the sandbox, when there is one), streaming its merged
    output line by line to on_log."""
    argv = ["/bin/sh", "-c", command]
    if box is not None:
        inner = ["/bin/sh", "-c", _WITH_EGRESS, "build", str(SANDBOX_RUN / EGRESS_SOCKET)]
        argv = sandbox.wrap([*inner, command], box.mounts, box.uid, chdir=cwd)
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=box.limits.apply if box is not None else None,
    )
    stopped: str | None = None
    try:
        stopped = _stream(process, on_log, cancel, deadline)
    finally:
        kill_group(process.pid)
    if stopped == "canceled":
        raise _Failed("canceled", "the build was canceled")
    if stopped == "timed_out":
        raise _Failed("timed_out", f"the build did not finish within {timeout_s} s (timeout)")
    if process.returncode != 0:
        raise _Failed(
            "build_failed",
            f"the {step} command `{command}` exited with code {process.returncode}",
        )


def _stream(
    process: subprocess.Popen, on_log: OnLog, cancel: threading.Event, deadline: float
) -> str | None:
    """Forward output until EOF; stop the process on cancel or timeout (returns which)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    os.set_blocking(fd, False)
    pending = b""
    stopped: str | None = None
    exited_at: float | None = None
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            if stopped is None and cancel.is_set():
                stopped = "canceled"
            elif stopped is None and time.monotonic() > deadline:
                stopped = "timed_out"
            if stopped and process.poll() is None:
                stop_process(process, KILL_GRACE_S)
            if process.poll() is not None:
                # The shell is gone: nothing it started may hold the pipe open. A process
                # that left the group could; its output is not waited for past the grace.
                kill_group(process.pid)
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > DRAIN_GRACE_S:
                    break
            if not selector.select(POLL_S):
                continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            while len(pending) > MAX_LOG_LINE:
                lines.append(pending[:MAX_LOG_LINE])
                pending = pending[MAX_LOG_LINE:]
            for line in lines:
                on_log("build", _decode(line))
    if pending:
        on_log("build", _decode(pending))
    process.wait()
    return stopped


def _decode(line: bytes) -> str:
    return line.decode("utf-8", "replace").rstrip("\r")


def _remove_tree(path: Path) -> None:
    def make_writable(function, failed_path, _):
        os.chmod(failed_path, 0o700)
        function(failed_path)

    shutil.rmtree(path, onerror=make_writable)


class LocalBuildEngine:
    """The build port locally: each build runs LocalBuilder in a thread of this process,
    where it can be canceled; the local stack's shutdown cancels and awaits them all."""

    method = "local"

    def __init__(self, work_root: Path) -> None:
        self.builder = LocalBuilder(work_root)
        self._cancels: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._shutting_down = threading.Event()

    def start(self, job: BuildJob, on_log: OnLog, on_finished: OnFinished) -> dict:
        cancel = threading.Event()
        thread = threading.Thread(
            target=self._run,
            args=(job, on_log, on_finished, cancel),
            name=f"build-{job.deployment_id}",
            daemon=True,
        )
        with self._lock:
            self._cancels[job.deployment_id] = cancel
            self._threads[job.deployment_id] = thread
        thread.start()
        return {}

    def _run(
        self, job: BuildJob, on_log: OnLog, on_finished: OnFinished, cancel: threading.Event
    ) -> None:
        try:
            try:
                outcome = self.builder.build(job, on_log, cancel)
            except Exception as error:
                logger().exception(
                    "Local build crashed", extra={"deployment_id": job.deployment_id}
                )
                outcome = BuildOutcome.failed(
                    "internal_error", f"The build could not run: {type(error).__name__}"
                )
            if self._shutting_down.is_set():
                outcome = BuildOutcome.failed(
                    "internal_error", "The local stack stopped during the build; retry it"
                )
            on_finished(outcome)
        finally:
            with self._lock:
                self._cancels.pop(job.deployment_id, None)
                self._threads.pop(job.deployment_id, None)

    def cancel(self, deployment_id: str, build_id: str | None) -> None:
        with self._lock:
            cancel = self._cancels.get(deployment_id)
        if cancel is not None:
            cancel.set()

    def is_building(self, deployment_id: str) -> bool:
        with self._lock:
            return deployment_id in self._threads

    def shutdown(self, timeout_s: float) -> None:
        """Cancel every build (each ends failed, to be retried) and wait for them."""
        self._shutting_down.set()
        try:
            with self._lock:
                cancels = list(self._cancels.values())
                threads = list(self._threads.values())
            for cancel in cancels:
                cancel.set()
            for thread in threads:
                thread.join(timeout_s)
        finally:
            self._shutting_down.clear()
