"""The local pipeline's own overhead, on the real local stack (free ports, a fresh state dir):

- from `POST .../deployments` to `running` for examples/static-site, minus what its build
  and start commands take themselves (it has no build command; starting its static server
  is timed alone, on the same machine);
- a redeploy and a rollback (neither builds), from the POST to the project's URL serving
  the new deployment (the edge's `X-Shipyard-Deployment`);
- from a log line written to the line seen by a client polling `GET .../logs?after=`.
"""

from __future__ import annotations

import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.harness import BENCH_ENV, show
from chalicelib.host.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "examples" / "static-site"
RUNS = 5
LOG_LINES = 20


class Stack:
    def __init__(self, directory: Path) -> None:
        self.port, self.moto_port = free_port(), free_port()
        self.state_dir = directory / "state"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHIPYARD_"))},
            "SHIPYARD_MOTO_PORT": str(self.moto_port),
            "SHIPYARD_STATE_DIR": str(self.state_dir),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        self.log = open(directory / "stack.log", "wb")  # noqa: SIM115 - the stack writes to it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chalicelib.local.stack", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        first = self.state_dir / "first-workspace.json"
        deadline = time.monotonic() + 120
        while not (first.exists() and self._healthy()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((directory / "stack.log").read_text()[-3000:])
            time.sleep(0.2)
        self.key = json.loads(first.read_text())["api_key"]

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/v1/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def call(self, method: str, path: str, body=None) -> dict:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        stop_process(self.process, grace_s=30, sig=signal.SIGINT, whole_group=False)
        self.log.close()


def _pack(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(directory)))
    return buffer.getvalue()


def _uploaded(stack: Stack, project_id: str, archive: bytes) -> str:
    import requests

    post = stack.call("POST", f"/v1/projects/{project_id}/uploads", {})["data"]
    requests.post(post["url"], data=post["fields"], files={"file": archive}, timeout=30)
    return post["id"]


def _to_running(stack: Stack, project_id: str, archive: bytes) -> tuple[float, dict]:
    upload_id = _uploaded(stack, project_id, archive)
    started = time.perf_counter()
    deployment = stack.call(
        "POST", f"/v1/projects/{project_id}/deployments", {"upload_id": upload_id}
    )["data"]
    path = f"/v1/projects/{project_id}/deployments/{deployment['id']}"
    while True:
        current = stack.call("GET", path)["data"]
        if current["status"] in ("running", "failed"):
            elapsed = time.perf_counter() - started
            if current["status"] != "running":
                raise RuntimeError(f"the deployment failed: {current['error_message']}")
            return elapsed, current
        time.sleep(0.02)


def _serving_after(stack: Stack, project: dict, path: str, body: dict) -> float:
    """Seconds from `POST path` to the project's URL answering from the new deployment."""
    started = time.perf_counter()
    created = stack.call("POST", f"/v1/projects/{project['id']}/{path}", body)["data"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(project["url"], timeout=5) as response:
                if response.headers.get("X-Shipyard-Deployment") == created["id"]:
                    return time.perf_counter() - started
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{path} never served: {created}")


def _static_server_start_seconds() -> list[float]:
    """How long the example's own start takes: the static server, until it listens."""
    for name, value in BENCH_ENV.items():  # settings, when this module runs on its own
        os.environ.setdefault(name, value)
    from chalicelib.buildplan.plan import make_plan
    from chalicelib.runtimes.local import LocalProcessRuntime

    plan = make_plan({"index.html": b""}, "static", {}, {})
    times = []
    with tempfile.TemporaryDirectory() as directory:
        runtime = LocalProcessRuntime(Path(directory))
        for run in range(RUNS):
            started = time.perf_counter()
            runtime.start(f"dep_bench{run}", "prj_bench", SITE, plan, {})
            times.append(time.perf_counter() - started)
            runtime.stop(f"dep_bench{run}")
    return times


def _building(stack: Stack, project_id: str, archive: bytes) -> dict:
    """A deployment kept `building` by a long build command, so its log is still open."""
    stack.call("PATCH", f"/v1/projects/{project_id}", {"build": {"build_command": "sleep 60"}})
    upload_id = _uploaded(stack, project_id, archive)
    deployment = stack.call(
        "POST", f"/v1/projects/{project_id}/deployments", {"upload_id": upload_id}
    )["data"]
    path = f"/v1/projects/{project_id}/deployments/{deployment['id']}"
    while stack.call("GET", path)["data"]["status"] != "building":
        time.sleep(0.05)
    return deployment


def _log_latency(stack: Stack, deployment: dict) -> list[float]:
    """Lines written through the log store (as a build writes them) to a deployment that
    is building; a client polls `GET .../logs?after=<cursor>` back to back and notes when
    each one shows up."""
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{stack.moto_port}",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        SHIPYARD_CURSOR_SECRET=(stack.state_dir / "cursor-secret").read_text().strip(),
        SHIPYARD_STATE_DIR=str(stack.state_dir),
    )
    from chalicelib.aws.clients import reset_clients
    from chalicelib.core.settings import get_settings
    from chalicelib.deployments import logs

    get_settings.cache_clear()
    reset_clients()
    path = f"/v1/projects/{deployment['project_id']}/deployments/{deployment['id']}/logs"
    written: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()

    def poll() -> None:
        cursor = stack.call("GET", path + "?limit=1000")["pagination"]["next_cursor"]
        while not stop.is_set():
            page = stack.call("GET", f"{path}?after={cursor}&limit=1000")
            now = time.perf_counter()
            for line in page["data"]:
                seen.setdefault(line["message"], now)
            cursor = page["pagination"]["next_cursor"]

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    time.sleep(0.5)
    for i in range(LOG_LINES):
        message = f"bench line {i}"
        written[message] = time.perf_counter()
        logs.append(deployment["project_id"], deployment["id"], [("build", message)])
        time.sleep(0.15)
    deadline = time.monotonic() + 10
    while len(seen.keys() & written.keys()) < LOG_LINES and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    poller.join(5)
    return [seen[m] - written[m] for m in written if m in seen]


def run() -> None:
    archive = _pack(SITE)
    with tempfile.TemporaryDirectory() as directory:
        stack = Stack(Path(directory))
        try:
            project = stack.call("POST", "/v1/projects", {"name": "Bench"})["data"]
            runs = [_to_running(stack, project["id"], archive) for _ in range(RUNS)]
            totals = [elapsed for elapsed, _ in runs]
            starts = _static_server_start_seconds()
            total, start = statistics.median(totals), statistics.median(starts)
            show(
                f"POST /deployments -> running, static example (median of {RUNS})", f"{total:.2f} s"
            )
            show("  its own build commands (none) + static server start (median)", f"{start:.2f} s")
            show(
                "pipeline overhead                              [target < 0.5 s]",
                f"{total - start:.2f} s",
            )
            redeploys = [_serving_after(stack, project, "redeploy", {}) for _ in range(RUNS)]
            first = runs[0][1]["id"]
            rollbacks = [
                _serving_after(stack, project, "rollback", {"deployment_id": first})
                for _ in range(RUNS)
            ]
            show(
                f"redeploy -> serving at the project URL (median of {RUNS}) [target < 1 s]",
                f"{statistics.median(redeploys):.2f} s",
            )
            show(
                f"rollback -> serving at the project URL (median of {RUNS}) [target < 1 s]",
                f"{statistics.median(rollbacks):.2f} s",
            )
            building = _building(stack, project["id"], archive)
            latencies = _log_latency(stack, building)
            stack.call(
                "POST",
                f"/v1/projects/{project['id']}/deployments/{building['id']}/cancel",
            )
            show(
                f"log line written -> seen by a polling client (median of {len(latencies)})",
                f"{statistics.median(latencies) * 1000:.0f} ms",
            )
            show(
                "  slowest                                      [target < 1 s]",
                f"{max(latencies) * 1000:.0f} ms",
            )
        finally:
            stack.stop()
