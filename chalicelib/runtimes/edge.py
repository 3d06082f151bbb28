"""The local edge: Caddy in front of every app, one listening port of 127.0.0.1 per project
(the project's stable URL), whose route is switched to whichever deployment runs.

Caddy is driven through its admin API (on a free port of 127.0.0.1): the whole config is
rendered from the routes kept here and loaded with one `POST /load`, which Caddy applies
atomically and gracefully (listeners are kept open, requests in flight on the old config
finish). The routes and the ports handed to projects are kept under `<state_dir>/edge/`, so
a restarted Caddy, or a restarted local stack, serves the same routes at the same ports.
Each project's access log is Caddy's own JSON log, one file per project.

Nothing here knows a deployment's status: the pipeline says which upstream a project's
port serves (a `host:port`, or a Unix socket path), and this module makes Caddy serve it.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chalicelib.core.log import logger
from chalicelib.host.processes import (
    PROJECT_PORTS,
    accepts,
    free_port,
    group_still_ours,
    leader_alive,
    port_free,
    start_ticks,
    stop_group,
)
from chalicelib.ports import DeployFailed

DEPLOYMENT_HEADER = "X-Shipyard-Deployment"
# How long Caddy keeps retrying an upstream that refuses (an app restarting) before a 502.
_TRY_DURATION = "5s"
_GRACE = "30s"
_READY_S = 10.0
_INSTALL_HINT = "the edge needs Caddy: install it with `apt-get install caddy` (or `make run`)"


def upstream_of(url: str) -> str:
    """Caddy's dial address of a deployment's own URL: `host:port`, or `unix//path` for a
    `http+unix://<percent-encoded path>` URL."""
    parts = urlsplit(url)
    if parts.scheme == "http+unix":
        return "unix/" + urllib.request.unquote(parts.netloc)
    return f"{parts.hostname}:{parts.port or 80}"


def port_of(url: str) -> int | None:
    return urlsplit(url).port if url else None


_PROJECT_ID = re.compile(r"prj_[0-9A-Za-z_-]{1,60}")


def _check(project_id: str) -> None:
    """A project id names files of the state directory: nothing else may."""
    if not _PROJECT_ID.fullmatch(project_id):
        raise ValueError(f"not a project id: {project_id!r}")


class CaddyEdge:
    def __init__(self, state_dir: Path, binary: str | None = None) -> None:
        self.dir = Path(state_dir) / "edge"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "access").mkdir(exist_ok=True)
        self.ports_dir, self.projects_dir = self.dir / "ports", self.dir / "projects"
        self.ports_dir.mkdir(exist_ok=True)
        self.projects_dir.mkdir(exist_ok=True)
        self.binary = binary or shutil.which("caddy")
        self._lock = threading.RLock()
        self._process: subprocess.Popen | None = None
        self._migrate_ports()

    # The ports of projects.

    def reserve(self, project_id: str) -> int:
        """The project's port: handed out once, kept across restarts.

        Each handout is two small files, so its cost does not grow with the number of
        projects (one file of every port, rewritten at each create, made a create cost more
        the more projects there were): `ports/<port>`, created exclusively and naming the
        project, claims the port, and `projects/<project_id>` (written whole, then renamed)
        says which is the project's. A crash between the two leaves one port unused, never
        one port twice."""
        _check(project_id)
        with self._lock:
            known = self._port_of(project_id)
            if known is not None:
                return known
            # PROJECT_PORTS: below Linux's ephemeral ports, and never drawn by free_port.
            low, high = PROJECT_PORTS
            for _ in range(high - low + 1):
                # A random start, so that stacks sharing this machine rarely pick the same.
                port = random.randint(low, high)
                if not port_free(port) or not self._claim(port, project_id):
                    continue
                self._write_text(self.projects_dir / project_id, str(port))
                return port
            raise DeployFailed("no port is left for the project's URL")

    def release(self, project_id: str) -> None:
        """Forget a deleted project: its route and its port (the claim first, and only if
        it is this project's, so a release run again never frees another's)."""
        _check(project_id)
        with self._lock:
            port = self._port_of(project_id)
            if port is not None and self._claimant(port) == project_id:
                (self.ports_dir / str(port)).unlink(missing_ok=True)
            (self.projects_dir / project_id).unlink(missing_ok=True)
            routes = self._read("routes.json", {})
            if routes.pop(project_id, None) is not None:
                self._write("routes.json", routes)
                if self.alive():
                    self._load(routes)

    def _port_of(self, project_id: str) -> int | None:
        try:
            return int((self.projects_dir / project_id).read_text())
        except (OSError, ValueError):
            return None

    def _claimant(self, port: int) -> str | None:
        try:
            return (self.ports_dir / str(port)).read_text()
        except OSError:
            return None

    def _claim(self, port: int, project_id: str) -> bool:
        """Whether `port` is now the project's: claimed here, or by an earlier try of the
        same project that stopped before its project file."""
        try:
            claim = os.open(self.ports_dir / str(port), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return self._claimant(port) == project_id
        with os.fdopen(claim, "w") as file:
            file.write(project_id)
        return True

    def _migrate_ports(self) -> None:
        """A state directory from before `ports/`: its one file of ports, split. A file
        that can't be read is left where it is; a port two projects claim stays its
        first claimant's (logged)."""
        old = self.dir / "ports.json"
        try:
            ports = json.loads(old.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            logger().warning("edge/ports.json could not be read; its ports are not kept")
            return
        for project_id, port in ports.items():
            if self._port_of(project_id) is not None:
                continue
            if self._claim(port, project_id):
                self._write_text(self.projects_dir / project_id, str(port))
            else:
                logger().warning(
                    "port %s of %s in edge/ports.json is %s's",
                    port,
                    project_id,
                    self._claimant(port),
                )
        old.unlink()

    # Routes.

    def route(self, project_id: str, port: int, upstream: str, deployment_id: str) -> None:
        """Serve `upstream` at the project's port from now on (atomically: a request gets
        the old upstream or the new one, never an error)."""
        with self._lock:
            routes = self._read("routes.json", {})
            routes[project_id] = {
                "port": port,
                "upstream": upstream,
                "deployment_id": deployment_id,
            }
            self._write("routes.json", routes)
            if not self.ensure():
                self._load(routes)

    def routes(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return self._read("routes.json", {})

    def access_log(self, project_id: str) -> Path:
        return self.dir / "access" / f"{project_id}.log"

    # Caddy itself.

    def ensure(self) -> bool:
        """Start Caddy with every route if it does not run (never started, or killed);
        True if it was (re)started."""
        with self._lock:
            if self.alive():
                return False
            self._start()
            return True

    def alive(self) -> bool:
        state = self._read("caddy.json", None)
        return state is not None and leader_alive(state["pid"], state.get("start_ticks"))

    def stop(self) -> None:
        with self._lock:
            state = self._read("caddy.json", None)
            if state is not None and group_still_ours(
                state["pid"], state["pid"], state.get("start_ticks")
            ):
                stop_group(state["pid"], 5.0, self._process)
            elif self._process is not None:
                # Its state file went (the state directory was removed): ours all the same.
                stop_group(self._process.pid, 5.0, self._process)
            self._process = None
            (self.dir / "caddy.json").unlink(missing_ok=True)

    def _start(self) -> None:
        if not self.binary:
            raise DeployFailed(_INSTALL_HINT)
        self.stop()
        admin = free_port()
        routes = self._read("routes.json", {})
        # Ports another program took while no Caddy held them are left out: one unbindable
        # port would make Caddy refuse the whole config.
        config = self._config({p: r for p, r in routes.items() if port_free(r["port"])}, admin)
        path = self.dir / "caddy.json.config"
        path.write_text(json.dumps(config))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir),
            "XDG_CONFIG_HOME": str(self.dir / "config"),
            "XDG_DATA_HOME": str(self.dir / "data"),
        }
        with (self.dir / "caddy.log").open("ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "run", "--config", str(path)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        state = {
            "pid": self._process.pid,
            "start_ticks": start_ticks(self._process.pid),
            "admin_port": admin,
        }
        self._write("caddy.json", state)
        deadline = time.monotonic() + _READY_S
        while not accepts(admin, 0.2):
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = (self.dir / "caddy.log").read_text(errors="replace")[-2000:]
                raise DeployFailed(f"the edge (Caddy) did not start: {tail}")
            time.sleep(0.05)

    def _load(self, routes: dict[str, dict[str, Any]]) -> None:
        state = self._read("caddy.json", None)
        admin = state["admin_port"]
        body = json.dumps(self._config(routes, admin)).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{admin}/load",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=30).close()
        except urllib.error.HTTPError as error:
            raise DeployFailed(f"the edge refused its routes: {error.read()[:500]!r}") from None

    def _config(self, routes: dict[str, dict[str, Any]], admin_port: int) -> dict:
        servers: dict[str, Any] = {}
        # No query string (it may carry a token) and no credentials reach a file: the
        # access logs and Caddy's own log (its errors quote the request) are filtered.
        logs: dict[str, Any] = {
            "default": {"level": "WARN", "exclude": ["http.log.access"], "encoder": _FILTERED}
        }
        for project_id, route in sorted(routes.items()):
            servers[project_id] = {
                "listen": [f"127.0.0.1:{route['port']}"],
                "automatic_https": {"disable": True},
                "logs": {"default_logger_name": project_id},
                "routes": [{"handle": _handlers(route)}],
            }
            logs[project_id] = {
                "writer": {
                    "output": "file",
                    "filename": str(self.access_log(project_id)),
                    "roll": False,
                },
                "encoder": _FILTERED,
                "include": [f"http.log.access.{project_id}"],
            }
        return {
            "admin": {"listen": f"127.0.0.1:{admin_port}", "config": {"persist": False}},
            "logging": {"logs": logs},
            "apps": {"http": {"grace_period": _GRACE, "servers": servers}},
        }

    def _read(self, name: str, default: Any) -> Any:
        try:
            return json.loads((self.dir / name).read_text())
        except (OSError, ValueError):
            return default

    def _write(self, name: str, value: Any) -> None:
        self._write_text(self.dir / name, json.dumps(value, indent=1))

    @staticmethod
    def _write_text(path: Path, text: str) -> None:
        """Write whole, then rename: a reader sees the old file or the new one. The
        partial file's name is this writer's own."""
        descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(text)
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise


# Caddy's log encoder for every file it writes: no query string, no credential header.
_FILTERED = {
    "format": "filter",
    "wrap": {"format": "json"},
    "fields": {
        "request>uri": {"filter": "regexp", "regexp": r"\?.*$", "value": ""},
        **{
            f"request>headers>{name}": {"filter": "delete"}
            for name in ("Authorization", "Cookie", "Proxy-Authorization", "Referer")
        },
    },
}


def _handlers(route: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "handler": "headers",
            "response": {"set": {DEPLOYMENT_HEADER: [route["deployment_id"]]}},
        },
        {
            "handler": "reverse_proxy",
            "upstreams": [{"dial": route["upstream"]}],
            "load_balancing": {"try_duration": _TRY_DURATION, "try_interval": "100ms"},
        },
    ]
