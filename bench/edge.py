"""Apps that stay up, measured on the real edge (Caddy) and the real local stack:

- the switch: from the edge's route change (what promote does once the new app is
  healthy) to the first answer of the new app at the project URL;
- from an app's crash to the project URL answering again (supervisor tick, backoff 1 s,
  restart, first health check);
- requests lost during a redeploy under a steady 50 req/s at the project URL;
- the proxy's added latency per request: the project URL against the app's own, as a
  difference of medians within one run.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.harness import show
from bench.pipeline import Stack, _to_running
from chalicelib.host.processes import accepts, free_port
from chalicelib.runtimes.edge import CaddyEdge
from tests.pipeline_support import targz

APP = r"""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/crash":
            os._exit(3)
        body = os.environ.get("SHIPYARD_DEPLOYMENT_ID", "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""
ARCHIVE = targz({"app.py": APP, "requirements.txt": ""})


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


def _server(port: int, text: str) -> subprocess.Popen:
    code = APP.replace('os.environ.get("SHIPYARD_DEPLOYMENT_ID", "")', repr(text))
    process = subprocess.Popen(
        [sys.executable, "-c", code], env={"PORT": str(port)}, start_new_session=True
    )
    while not accepts(port):
        time.sleep(0.02)
    return process


def _switch_seconds(directory: Path, runs: int = 10) -> list[float]:
    edge = CaddyEdge(directory)
    ports = [free_port(), free_port()]
    apps = [_server(ports[0], "a"), _server(ports[1], "b")]
    project_port = edge.reserve("prj_bench")
    try:
        edge.route("prj_bench", project_port, f"127.0.0.1:{ports[0]}", "a")
        url = f"http://127.0.0.1:{project_port}/"
        times = []
        for run in range(runs):
            new = "b" if run % 2 == 0 else "a"
            started = time.perf_counter()
            edge.route("prj_bench", project_port, f"127.0.0.1:{ports[run % 2 == 0]}", new)
            while _get(url)[1].decode() != new:
                pass
            times.append(time.perf_counter() - started)
        return times
    finally:
        edge.stop()
        for app in apps:
            app.kill()
            app.wait()


def _latency_ms(project_url: str, app_url: str, requests: int = 300) -> tuple[float, float]:
    direct, proxied = [], []
    for _ in range(requests):
        for url, into in ((app_url, direct), (project_url, proxied)):
            started = time.perf_counter()
            _get(url)
            into.append((time.perf_counter() - started) * 1000)
    return statistics.median(direct), statistics.median(proxied)


def _redeploy_losses(stack: Stack, project: dict) -> tuple[int, int]:
    """(failed, sent) requests at 50 req/s across a redeploy."""
    sent, failed = [0], [0]
    stopping = threading.Event()

    def load() -> None:
        next_at = time.perf_counter()
        while not stopping.is_set():
            sent[0] += 1
            try:
                if _get(project["url"])[0] != 200:
                    failed[0] += 1
            except OSError:
                failed[0] += 1
            next_at += 1 / 50
            time.sleep(max(0.0, next_at - time.perf_counter()))

    client = threading.Thread(target=load)
    client.start()
    try:
        time.sleep(1)
        deployment = stack.call("POST", f"/v1/projects/{project['id']}/redeploy", {})["data"]
        path = f"/v1/projects/{project['id']}/deployments/{deployment['id']}"
        while stack.call("GET", path)["data"]["status"] not in ("running", "failed"):
            time.sleep(0.1)
        time.sleep(7)  # past the old app's drain and stop
    finally:
        stopping.set()
        client.join()
    return failed[0], sent[0]


def _crash_to_served_s(stack: Stack, running: dict, project: dict) -> float:
    started = time.perf_counter()
    with contextlib.suppress(OSError):
        _get(running["url"] + "/crash")
    while True:
        try:
            if _get(project["url"], timeout=1)[0] == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.02)


def run() -> None:
    with tempfile.TemporaryDirectory() as directory:
        switch = _switch_seconds(Path(directory) / "edge")
        show(
            "edge switch: route change -> first new answer",
            f"median {statistics.median(switch) * 1000:.1f} ms, max {max(switch) * 1000:.1f} ms "
            "(target < 300 ms)",
        )
        stack = Stack(Path(directory))
        try:
            body = {"name": "Bench edge", "runtime": "python"}
            body["run"] = {"start_command": "python app.py", "health_check_interval_s": 1}
            project = stack.call("POST", "/v1/projects", body)["data"]
            _, running = _to_running(stack, project["id"], ARCHIVE)
            direct, proxied = _latency_ms(project["url"], running["url"])
            show(
                "proxy added latency per request",
                f"{proxied - direct:.2f} ms (median {proxied:.2f} ms via the edge, "
                f"{direct:.2f} ms direct; target < 2 ms)",
            )
            failed, sent = _redeploy_losses(stack, project)
            show(
                "requests lost during a redeploy at 50 req/s",
                f"{failed} of {sent} (target 0)",
            )
            current = stack.call("GET", f"/v1/projects/{project['id']}")["data"]
            running = stack.call(
                "GET",
                f"/v1/projects/{project['id']}/deployments/{current['current_deployment_id']}",
            )["data"]
            show(
                "crash -> project URL served again",
                f"{_crash_to_served_s(stack, running, project):.2f} s "
                "(supervisor tick 1 s, first backoff 1 s)",
            )
        finally:
            stack.stop()
