"""The local runtime: each deployment runs as a real process on this machine. This module
supervises those processes: start, wait for the port, health-check, stop, and the state
files that let any process find them again.

A deployment's process gets its own session (so its whole process group can be stopped), a
free port in `PORT`, and the command, directory and clean environment of local_launch.py,
run in its sandbox (host/sandbox.py): its own user and network, only its artifact, served at
its port through a Unix socket (`socket_path`) that two socat bridges join to the app.
Its stdout and stderr go to `<state_dir>/logs/<deployment_id>.log`; a thread in the starting
process follows that file (local_logs.py) and hands each line to `on_log("deploy", line)`.
The app writes to the file directly, so it keeps running when the process that started it
goes away. Ports and process groups are handled by host/processes.py.

`<state_dir>/<deployment_id>.json` describes each running deployment (pid, port, project,
process start time), so any process that uses the same state_dir can health-check or stop
it, and `is_running` stays true across restarts of the local stack while the app lives.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.core.clock import now_iso
from chalicelib.host import sandbox
from chalicelib.host.processes import (
    accepts,
    free_port,
    group_still_ours,
    leader_alive,
    port_free,
    start_ticks,
    stop_group,
)
from chalicelib.ports import DeployFailed, OnLog
from chalicelib.runtimes.local_launch import STATIC_SERVER, Launch, prepare_launch
from chalicelib.runtimes.local_logs import LogTailer, exit_message, how_it_ended, last_lines

__all__ = ["DeployFailed", "LocalProcessRuntime", "RunningApp"]

_DEPLOYMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_POLL_S = 0.05
_STATE_VERSION = 1
# Where a sandboxed app's socket directory is, inside its sandbox.
SANDBOX_RUN = Path("/run/shipyard")
APP_SOCKET = "app.sock"
# Inside the sandbox: once the app accepts on its port in the sandbox's own network
# namespace (probed with empty connections, which no server logs), a bridge from the app's
# socket to that port, whose appearing tells the host the app is ready; then the app.
# Outside, the leader of the group: a forwarder from the deployment's port of 127.0.0.1 to
# that socket, then the sandbox (which dies with this leader); the forwarder goes when the
# sandbox ends. The leader is not Shipyard, so the app outlives a restart of the local stack.
_INNER_BRIDGE = (
    '(until socat -u OPEN:/dev/null TCP:127.0.0.1:"$2" 2>/dev/null; do sleep 0.05; done; '
    'exec socat UNIX-LISTEN:"$1",fork,unlink-early TCP:127.0.0.1:"$2" 2>/dev/null) & '
    'shift 2; exec "$@"'
)
# The leader runs in the socket's directory and names the socket relatively: a Unix
# socket's path is limited to 107 bytes, which a deep state directory would pass.
_OUTER_BRIDGE = (
    'socat TCP-LISTEN:"$1",bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:"$2" 2>/dev/null & '
    'bridge=$!; shift 2; "$@"; code=$?; kill $bridge 2>/dev/null; exit $code'
)


@dataclass
class RunningApp:
    deployment_id: str
    url: str
    port: int
    pid: int


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
        self._tailers: dict[str, LogTailer] = {}

    def start(
        self,
        deployment_id: str,
        project_id: str,
        app_dir: Path,
        plan: Any,
        env: dict[str, str],
        on_log: OnLog | None = None,
        host_port: int | None = None,
    ) -> RunningApp:
        """Start the app and wait until its port accepts connections (or ready_timeout_s).
        It is served on host_port when that is free (a restart keeps its URL), else on a
        free one; an unsandboxed app that names its port in the plan gets that one.

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
            try:
                limits = sandbox.limits()
            except sandbox.Unsandboxed as error:
                raise DeployFailed(str(error)) from None
            wanted = host_port if host_port and port_free(host_port) else None
            if limits is None:
                port = plan.port or wanted or free_port()
                if plan.port and not port_free(plan.port):
                    raise DeployFailed(
                        f"port {plan.port} that the app listens on is already in use"
                    )
            else:
                # The app has a network of its own: it may listen on any port in there.
                port = wanted or free_port()
            inner_port = plan.port or port
            launch = prepare_launch(
                deployment_id, app_dir, plan, env, inner_port, shim_dir=self.state_dir / "bin"
            )
            if limits is not None:
                launch = self._sandboxed(deployment_id, app_dir, launch, port, inner_port)
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
                        preexec_fn=limits.apply if limits is not None else None,
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
                "sandboxed": limits is not None,
                "socket": str(self.socket_path(deployment_id)) if limits is not None else None,
                "started_at": now_iso(),
            }
            self._write_state(state)
            self._children[deployment_id] = process
            if on_log is not None:
                self._follow(state, on_log, offset)
        self._await_listening(deployment_id, process, port, log_path, offset, limits is not None)
        return _running_app(state)

    def socket_path(self, deployment_id: str) -> Path:
        """The Unix socket a sandboxed app is served on (what its port forwards to): a
        reverse proxy may connect to it directly."""
        _check_id(deployment_id)
        return self.state_dir / "sockets" / deployment_id / APP_SOCKET

    def _sandboxed(
        self, deployment_id: str, app_dir: Path, launch: Launch, port: int, inner_port: int
    ) -> Launch:
        """The launch wrapped in the app's sandbox: it sees its artifact (read-only), its
        socket directory, and a private /tmp that is also its HOME."""
        if not app_dir.is_dir():
            raise DeployFailed(f"the app cannot be started: {app_dir} is not a directory")
        uid = sandbox.uid_for(deployment_id)
        sockets = self.socket_path(deployment_id).parent
        sockets.mkdir(parents=True, exist_ok=True)
        self.socket_path(deployment_id).unlink(missing_ok=True)  # a stale one is not ready
        sandbox.give_to(sockets, uid)
        sandbox.give_to(app_dir, uid)
        mounts = [
            sandbox.Mount(app_dir, app_dir),
            sandbox.Mount(sockets, SANDBOX_RUN, writable=True),
            sandbox.Mount(STATIC_SERVER, STATIC_SERVER),
        ]
        shims = self.state_dir / "bin"
        if shims.is_dir():
            mounts.append(sandbox.Mount(shims, shims))
        inner = ["/bin/sh", "-c", _INNER_BRIDGE, "bridge", str(SANDBOX_RUN / APP_SOCKET)]
        inner += [str(inner_port), *launch.command]
        wrapped = sandbox.wrap(inner, mounts, uid, chdir=launch.cwd)
        outer = ["/bin/sh", "-c", _OUTER_BRIDGE, "forwarder", str(port), APP_SOCKET, *wrapped]
        env = {**launch.env, "HOME": "/tmp", "TMPDIR": "/tmp"}
        env["PATH"] = sandbox.search_path(env.get("PATH", ""))
        return Launch(outer, sockets, env)

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
        shutil.rmtree(self.socket_path(deployment_id).parent, ignore_errors=True)
        self._state_path(deployment_id).unlink(missing_ok=True)

    def is_running(self, deployment_id: str) -> bool:
        _check_id(deployment_id)
        return self._live_state(deployment_id) is not None

    def exit_code(self, deployment_id: str) -> int | None:
        """The exit code of the app's last process started by this one, once it ended."""
        process = self._children.get(deployment_id)
        return None if process is None else process.poll()

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

    def _follow(self, state: dict[str, Any], on_log: OnLog, offset: int | None) -> None:
        """Hand the log's lines from offset (None: its current end) to on_log while the app
        runs. Called with the lock held."""
        deployment_id = state["deployment_id"]
        log_path = self.log_path(deployment_id)
        if offset is None:
            offset = log_path.stat().st_size if log_path.exists() else 0
        tailer = LogTailer(log_path, offset, on_log, lambda: self._alive(deployment_id, state))
        self._tailers[deployment_id] = tailer
        tailer.start()

    def _alive(self, deployment_id: str, state: dict[str, Any]) -> bool:
        process = self._children.get(deployment_id)
        if process is not None:
            return process.poll() is None
        return leader_alive(state["pid"], state.get("start_ticks"))

    def _await_listening(
        self,
        deployment_id: str,
        process: subprocess.Popen,
        port: int,
        log_path: Path,
        offset: int,
        bridged: bool,
    ) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                self.stop(deployment_id)
                raise DeployFailed(exit_message(code, last_lines(log_path, offset)))
            # The forwarder of a sandboxed app accepts before the app listens: the app is
            # ready once its socket exists (_INNER_BRIDGE).
            if accepts(port) and (not bridged or self.socket_path(deployment_id).exists()):
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
            return f"the app is not running: it {how_it_ended(process.returncode)}"
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


def _check_id(deployment_id: str) -> None:
    if not _DEPLOYMENT_ID.match(deployment_id):
        raise ValueError(f"not a deployment id: {deployment_id!r}")


def _running_app(state: dict[str, Any]) -> RunningApp:
    return RunningApp(state["deployment_id"], state["url"], state["port"], state["pid"])
