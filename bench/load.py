"""Load on the real local stack: 50 concurrent clients for 60 s, each on its own
keep-alive connection, on a mix of reads, creates with Idempotency-Key, deployments (of a
small static site, a bounded number of them) and log reads. Prints requests/s, p50, p99,
5xx, lost writes (a 201 whose resource is then missing) and the keep-alive/fresh ratio of
a single client, each beside its target. Loopback only; it stops by itself."""

from __future__ import annotations

import http.client
import json
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from bench.harness import show
from tests.e2e.conftest import start_stack, stop_stack
from tests.pipeline_support import multipart, targz

CLIENTS = 50
DURATION_S = float(os.environ.get("SHIPYARD_BENCH_LOAD_S", 60))  # shorter while profiling
MAX_DEPLOYMENTS = 10  # each one builds and runs an app on this machine


class Client:
    def __init__(self, url: str, key: str) -> None:
        address = urlsplit(url)
        self.host, self.port, self.key = address.hostname, address.port, key
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(self, method: str, path: str, body: bytes | None = None, headers=None):
        sent = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        if body is not None and "Content-Type" not in sent:
            sent["Content-Type"] = "application/json"
        try:
            self.connection.request(method, path, body=body, headers=sent)
            response = self.connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            raise


def _single_client_ratio(url: str, key: str, runs: int = 40, warm: int = 20) -> tuple[float, float]:
    """Median ms of an authenticated GET on one keep-alive connection and on fresh ones,
    after `warm` unrecorded pairs (a stack just started is still finding its feet: its
    recovery, the streams' first reads, the edge)."""
    kept = Client(url, key)
    kept.call("GET", "/v1/projects?limit=1")
    alive, fresh = [], []
    order = random.Random(1)
    for run in range(warm + runs):
        if run == warm:
            alive.clear()
            fresh.clear()
        # In turn, in a random order: a fixed one would line up with the rate limit's
        # leases (one write every few requests) and give all the writes to one side.
        for side in order.sample(("alive", "fresh"), 2):
            client = kept if side == "alive" else Client(url, key)
            started = time.perf_counter()
            client.call("GET", "/v1/projects?limit=1")
            (alive if side == "alive" else fresh).append(time.perf_counter() - started)
    return statistics.median(alive) * 1000, statistics.median(fresh) * 1000


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time so far of these processes (Linux /proc)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _server_pids(stack) -> list[int]:
    """The stack's process and its moto server's."""
    moto = f"moto_server\x00-H\x00127.0.0.1\x00-p\x00{stack.env['SHIPYARD_MOTO_PORT']}\x00"
    found = [stack.process.pid]
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and moto in (entry / "cmdline").read_text():
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return found


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(Path(tmp), {"SHIPYARD_FIRST_TIER": "enterprise"})
        try:
            _load(stack.url, stack.key, _server_pids(stack))
        finally:
            stop_stack(stack.process)


def _load(url: str, key: str, servers: list[int]) -> None:
    alive_ms, fresh_ms = _single_client_ratio(url, key)
    show("single client GET, keep-alive", f"{alive_ms:.1f} ms")
    show("single client GET, fresh connection", f"{fresh_ms:.1f} ms")
    show("keep-alive / fresh   [target <= 1.2]", f"{alive_ms / fresh_ms:.2f}")

    setup = Client(url, key)
    _, body = setup.call("POST", "/v1/projects", json.dumps({"name": "load"}).encode())
    project_id = json.loads(body)["data"]["id"]
    content_type, archive = multipart(
        {"archive": ("site.tar.gz", targz({"index.html": "<h1>load</h1>"}))}
    )
    _, body = setup.call(
        "POST", f"/v1/projects/{project_id}/deploy", archive, {"Content-Type": content_type}
    )
    deployment_id = json.loads(body)["data"]["id"]

    lock = threading.Lock()
    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {}
    statuses: dict[int, int] = {}
    created: list[str] = []
    deployments = [0]
    errors = [0]
    deadline = time.monotonic() + DURATION_S

    def client_loop(seed: int) -> None:
        chooser = random.Random(seed)
        me = Client(url, key)
        while time.monotonic() < deadline:
            pick = chooser.random()
            kind, method, path = "projects page", "GET", "/v1/projects?limit=20"
            data, headers = None, {}
            if pick < 0.2:
                kind, method, path = "project create", "POST", "/v1/projects"
                data = json.dumps({"name": f"load {uuid.uuid4().hex[:12]}"}).encode()
                headers = {"Idempotency-Key": uuid.uuid4().hex}
            elif pick < 0.3:
                kind = "log page"
                path = f"/v1/projects/{project_id}/deployments/{deployment_id}/logs?limit=100"
            elif pick < 0.32:
                with lock:
                    allowed = deployments[0] < MAX_DEPLOYMENTS
                    deployments[0] += allowed
                if allowed:
                    kind, method, path = "deploy", "POST", f"/v1/projects/{project_id}/deploy"
                    data, headers = archive, {"Content-Type": content_type}
            elif pick < 0.5:
                kind = "deployments page"
                path = f"/v1/projects/{project_id}/deployments?limit=20"
            started = time.perf_counter()
            try:
                status, answer = me.call(method, path, data, headers)
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
                continue
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                by_kind.setdefault(kind, []).append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
                if kind == "project create" and status == 201:
                    created.append(json.loads(answer)["data"]["id"])

    started, cpu = time.monotonic(), [_cpu_seconds([pid]) for pid in servers]
    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    cpu = [_cpu_seconds([pid]) - before for pid, before in zip(servers, cpu, strict=True)]

    lost = sum(setup.call("GET", f"/v1/projects/{pid}")[0] != 200 for pid in created)
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[int(len(ordered) * 0.99)] * 1000
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    show(f"{CLIENTS} clients for {DURATION_S} s: requests", str(len(latencies)))
    show("  statuses", ", ".join(f"{s} x{n}" for s, n in sorted(statuses.items())))
    show("requests/s   [target >= 100]", f"{len(latencies) / wall:.0f}")
    show("p50   [target: -]", f"{p50:.0f} ms")
    show("p99   [target < 500 ms]", f"{p99:.0f} ms")
    for kind, times in sorted(by_kind.items()):
        times.sort()
        show(
            f"  {kind} ({len(times)}): p50 / p99",
            f"{times[len(times) // 2] * 1000:.0f} / {times[int(len(times) * 0.99)] * 1000:.0f} ms",
        )
    per_request = [seconds / max(len(latencies), 1) * 1000 for seconds in cpu]
    show(
        "  CPU of the API and moto per request (2 cores: 20 ms = 100/s)",
        f"{sum(per_request):.1f} ms (API {per_request[0]:.1f}, moto {sum(per_request[1:]):.1f})",
    )
    show("5xx   [target 0]", str(server_errors))
    show("connection errors   [target 0]", str(errors[0]))
    show(f"lost writes of {len(created)} creates   [target 0]", str(lost))
