"""The local runtime: each deployment runs as a real process on this machine.

A deployment's process gets its own session (so its whole process group can be stopped), a
free port in `PORT`, the deployment's env on a clean base environment (no credentials of
Shipyard's own process), and the built app directory as its working directory. Its stdout
and stderr go to `<state_dir>/logs/<deployment_id>.log`; a thread in the starting process
follows that file and hands each line to `on_log("deploy", line)`. The app writes to the file
directly, so it keeps running when the process that started it goes away.

`<state_dir>/<deployment_id>.json` describes each running deployment (pid, port, project,
process start time), so any process that uses the same state_dir can health-check or stop
it, and `is_running` stays true across restarts of the local stack while the app lives.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.buildplan.plan import PYTHON_DEPS_DIR
from chalicelib.core.clock import now_iso
from chalicelib.core.log import logger
from chalicelib.host.processes import (
    accepts,
    free_port,
    group_still_ours,
    leader_alive,
    port_free,
    start_ticks,
    stop_group,
)
from chalicelib.runtimes import DeployFailed

__all__ = ["PYTHON_DEPS_DIR", "DeployFailed", "LocalProcessRuntime", "RunningApp"]

OnLog = Callable[[str, str], None]


STATIC_SERVER = Path(__file__).with_name("static_server.py")

# The only variables of Shipyard's own environment an app inherits: enough to find
# interpreters and locales, nothing that carries credentials.
_INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYENV_ROOT")
_DEPLOYMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_POLL_S = 0.05
_TAIL_LINES = 20
_MAX_LINE = 16 * 1024
_STATE_VERSION = 1


@dataclass
class RunningApp:
    deployment_id: str
    url: str
    port: int
    pid: int


@dataclass
class _Launch:
    command: list[str]
    cwd: Path
    env: dict[str, str]


class LocalProcessRuntime:
    def __init__(
        self, state_dir: Path, ready_timeout_s: float = 10.0, stop_grace_s: float = 5.0
    ) -> None:
        """ready_timeout_s: how long `start` waits for the port to open before it hands over
        to the health checks; stop_grace_s: how long `stop` waits after SIGTERM."""
        self.state_dir = Path(state_dir)
        self.ready_timeout_s = ready_timeout_s
        self.stop_grace_s = stop_grace_s
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._children: dict[str, subprocess.Popen] = {}
        self._tailers: dict[str, _LogTailer] = {}

    def start(
        self,
        deployment_id: str,
        project_id: str,
        app_dir: Path,
        plan: Any,
        env: dict[str, str],
        on_log: OnLog | None = None,
    ) -> RunningApp:
        """Start the app and wait until its port accepts connections (or ready_timeout_s).

        Starting a deployment that is already running returns it as it is, so a repeated
        deploy step starts one process; with on_log, its new lines are followed from now on
        (as after a restart of the local stack, when another process had started it)."""
        _check_id(deployment_id)
        app_dir = Path(app_dir)
        with self._lock:
            current = self._live_state(deployment_id)
            if current is not None:
                if on_log is not None and deployment_id not in self._tailers:
                    self._follow(current, on_log, offset=None)
                return _running_app(current)
            # Whatever is left of an earlier start that has ended is forgotten.
            self._state_path(deployment_id).unlink(missing_ok=True)
            self._children.pop(deployment_id, None)
            self._tailers.pop(deployment_id, None)
            port = plan.port or free_port()
            if plan.port and not port_free(plan.port):
                raise DeployFailed(f"port {plan.port} that the app listens on is already in use")
            launch = self._launch(deployment_id, app_dir, plan, env, port)
            log_path = self.log_path(deployment_id)
            offset = log_path.stat().st_size if log_path.exists() else 0
            with log_path.open("ab") as log:
                try:
                    process = subprocess.Popen(
                        launch.command,
                        cwd=launch.cwd,
                        env=launch.env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                except OSError as error:
                    raise DeployFailed(f"the app cannot be started: {error}") from None
            state = {
                "version": _STATE_VERSION,
                "deployment_id": deployment_id,
                "project_id": project_id,
                "runtime": plan.runtime,
                "pid": process.pid,
                "pgid": process.pid,
                "start_ticks": start_ticks(process.pid),
                "port": port,
                "url": f"http://127.0.0.1:{port}",
                "command": launch.command,
                "cwd": str(launch.cwd),
                "log_path": str(log_path),
                "started_at": now_iso(),
            }
            self._write_state(state)
            self._children[deployment_id] = process
            if on_log is not None:
                self._follow(state, on_log, offset)
        self._await_listening(deployment_id, process, port, log_path, offset)
        return _running_app(state)

    def health_check(self, deployment_id: str, path: str, timeout_s: float) -> tuple[bool, str]:
        """GET http://127.0.0.1:<port><path>, no redirects followed: 2xx and 3xx are healthy."""
        _check_id(deployment_id)
        state = self._live_state(deployment_id)
        if state is None:
            return False, self._not_running_detail(deployment_id)
        path = path if path.startswith("/") else "/" + path
        connection = http.client.HTTPConnection("127.0.0.1", state["port"], timeout=timeout_s)
        try:
            connection.request(
                "GET", path, headers={"User-Agent": "Shipyard-HealthCheck/1", "Connection": "close"}
            )
            status = connection.getresponse().status
        except (OSError, http.client.HTTPException) as error:
            return False, f"GET {path} failed: {error or type(error).__name__}"
        finally:
            connection.close()
        return 200 <= status < 400, f"GET {path} answered {status}"

    def stop(self, deployment_id: str) -> None:
        """Stop the deployment's whole process group: SIGTERM, then SIGKILL after the grace."""
        _check_id(deployment_id)
        with self._lock:
            process = self._children.pop(deployment_id, None)
            tailer = self._tailers.pop(deployment_id, None)
        state = self._read_state(deployment_id)
        if state is not None and group_still_ours(
            state["pid"], state["pgid"], state.get("start_ticks")
        ):
            stop_group(state["pgid"], self.stop_grace_s, process)
        elif process is not None:
            stop_group(process.pid, self.stop_grace_s, process)
        if tailer is not None:
            tailer.stop()
        self._state_path(deployment_id).unlink(missing_ok=True)

    def is_running(self, deployment_id: str) -> bool:
        _check_id(deployment_id)
        return self._live_state(deployment_id) is not None

    def stop_all(self) -> None:
        """Stop every deployment this state_dir knows of, whoever started it."""
        with self._lock:
            known = set(self._children)
        known.update(path.stem for path in self.state_dir.glob("*.json"))
        for deployment_id in sorted(known):
            if _DEPLOYMENT_ID.match(deployment_id):
                self.stop(deployment_id)

    def log_path(self, deployment_id: str) -> Path:
        """The file the deployment's stdout and stderr go to (kept after it stops)."""
        _check_id(deployment_id)
        return self.state_dir / "logs" / f"{deployment_id}.log"

    def _launch(
        self, deployment_id: str, app_dir: Path, plan: Any, env: dict[str, str], port: int
    ) -> _Launch:
        base = _base_environment()
        if plan.runtime == "static":
            site = _static_root(app_dir, plan.output_directory)
            command = [sys.executable, "-I", str(STATIC_SERVER), "--dir", str(site)]
            command += ["--port", str(port)]
            return _Launch(command, app_dir, {**base, "PORT": str(port)})
        if plan.runtime not in ("python", "node"):
            raise DeployFailed(f"unknown runtime {plan.runtime!r}")
        if not plan.start_command:
            raise DeployFailed(
                f"no start command for this {plan.runtime} app: set run.start_command"
            )
        merged = {**base, **_runtime_defaults(plan.runtime), **env}
        paths = [merged.get("PATH", "")]
        if plan.runtime == "node":
            paths.insert(0, str(app_dir / "node_modules" / ".bin"))
        else:
            deps = app_dir / PYTHON_DEPS_DIR
            if deps.is_dir():
                paths.insert(0, str(deps / "bin"))
                merged["PYTHONPATH"] = os.pathsep.join(
                    part for part in (str(deps), env.get("PYTHONPATH")) if part
                )
            shim = self._python_shim(os.pathsep.join(paths))
            if shim is not None:
                paths.insert(0, shim)
        merged["PATH"] = os.pathsep.join(part for part in paths if part)
        merged["PORT"] = str(port)
        merged["SHIPYARD_DEPLOYMENT_ID"] = deployment_id
        # A shell, as a Procfile's `web:` line is run: `$PORT`, `&&` and `cd` work as written.
        return _Launch(["/bin/sh", "-c", plan.start_command], app_dir, merged)

    def _follow(self, state: dict[str, Any], on_log: OnLog, offset: int | None) -> None:
        """Hand the log's lines from offset (None: its current end) to on_log while the app
        runs. Called with the lock held."""
        deployment_id = state["deployment_id"]
        log_path = self.log_path(deployment_id)
        if offset is None:
            offset = log_path.stat().st_size if log_path.exists() else 0
        tailer = _LogTailer(log_path, offset, on_log, lambda: self._alive(deployment_id, state))
        self._tailers[deployment_id] = tailer
        tailer.start()

    def _alive(self, deployment_id: str, state: dict[str, Any]) -> bool:
        process = self._children.get(deployment_id)
        if process is not None:
            return process.poll() is None
        return leader_alive(state["pid"], state.get("start_ticks"))

    def _python_shim(self, path: str) -> str | None:
        """A directory with `python` for hosts that only have `python3` (Debian and friends)."""
        if shutil.which("python", path=path) is not None:
            return None
        python3 = shutil.which("python3", path=path)
        if python3 is None:
            return None
        shim = self.state_dir / "bin"
        shim.mkdir(exist_ok=True)
        with contextlib.suppress(FileExistsError):
            (shim / "python").symlink_to(python3)
        return str(shim)

    def _await_listening(
        self,
        deployment_id: str,
        process: subprocess.Popen,
        port: int,
        log_path: Path,
        offset: int,
    ) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                self.stop(deployment_id)
                raise DeployFailed(_exit_message(code, _last_lines(log_path, offset)))
            if accepts(port):
                return
            time.sleep(_POLL_S)

    def _live_state(self, deployment_id: str) -> dict[str, Any] | None:
        state = self._read_state(deployment_id)
        if state is None or not self._alive(deployment_id, state):
            return None
        return state

    def _not_running_detail(self, deployment_id: str) -> str:
        process = self._children.get(deployment_id)
        if process is not None and process.returncode is not None:
            return f"the app is not running: it {_how_it_ended(process.returncode)}"
        return "the app is not running"

    def _state_path(self, deployment_id: str) -> Path:
        return self.state_dir / f"{deployment_id}.json"

    def _read_state(self, deployment_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._state_path(deployment_id).read_text())
        except (OSError, ValueError):
            return None

    def _write_state(self, state: dict[str, Any]) -> None:
        path = self._state_path(state["deployment_id"])
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(state, indent=2))
        os.replace(partial, path)


class _LogTailer:
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
                self._stopped.wait(_POLL_S * 2)
        if pending:
            self._send(pending)

    def _emit(self, data: bytes) -> bytes:
        *lines, rest = data.split(b"\n")
        for line in lines:
            self._send(line)
        if len(rest) >= _MAX_LINE:
            self._send(rest)
            return b""
        return rest

    def _send(self, line: bytes) -> None:
        for start in range(0, max(len(line), 1), _MAX_LINE):
            piece = line[start : start + _MAX_LINE]
            try:
                self._on_log("deploy", piece.decode("utf-8", "replace").rstrip("\r"))
            except Exception:
                # The app's log is best effort: a failing sink must not stop the following.
                logger().exception("on_log failed", extra={"log_path": str(self._path)})


def _check_id(deployment_id: str) -> None:
    if not _DEPLOYMENT_ID.match(deployment_id):
        raise ValueError(f"not a deployment id: {deployment_id!r}")


def _running_app(state: dict[str, Any]) -> RunningApp:
    return RunningApp(state["deployment_id"], state["url"], state["port"], state["pid"])


def _runtime_defaults(runtime: str) -> dict[str, str]:
    if runtime == "python":
        return {"PYTHONUNBUFFERED": "1"}
    return {"NODE_ENV": "production"}


def _base_environment() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name in _INHERITED or name.startswith("LC_")
    }
    # Shipyard's own virtualenv must not leak in: `python` would be Shipyard's interpreter.
    own_bin = os.path.join(sys.prefix, "bin") if sys.prefix != sys.base_prefix else None
    parts = os.environ.get("PATH", os.defpath).split(os.pathsep)
    env["PATH"] = os.pathsep.join(part for part in parts if part and part != own_bin)
    return env


def _static_root(app_dir: Path, output_directory: str | None) -> Path:
    root = app_dir.resolve()
    site = (root / (output_directory or ".")).resolve()
    if not site.is_relative_to(root):
        raise DeployFailed(f"output directory {output_directory!r} leaves the app directory")
    if not site.is_dir():
        raise DeployFailed(f"output directory {output_directory or '.'!r} does not exist")
    return site


def _how_it_ended(code: int) -> str:
    if code < 0:
        return f"was killed by signal {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _exit_message(code: int, lines: list[str]) -> str:
    message = f"the app {_how_it_ended(code)} at start"
    if not lines:
        return message + " without any output"
    return message + "; its last output:\n" + "\n".join(lines)


def _last_lines(log_path: Path, offset: int) -> list[str]:
    with log_path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(offset, size - 64 * 1024))
        text = handle.read().decode("utf-8", "replace")
    return [line for line in text.splitlines() if line.strip()][-_TAIL_LINES:]
