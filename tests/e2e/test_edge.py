"""Apps that stay up, on the real local stack with its real edge (Caddy): the project's
stable URL across deployments and rollbacks with no failed request during the switches,
supervision (an app that exits, one that hangs, one that ignores SIGTERM, the edge killed,
a deleted project), the runtime log (and a flood) and the access log."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from chalicelib.host.processes import leader_alive
from tests.e2e.cli import run_cli
from tests.e2e.conftest import ROOT, external_moto, start_stack, stop_stack
from tests.e2e.test_pipeline import deploy, wait
from tests.e2e.test_sse_eventsource import SCRIPT, node  # noqa: F401 - a fixture used here
from tests.pipeline_support import targz
from tests.waiting import eventually

FAST = {
    "SHIPYARD_SSE_WAIT_S": "1",
    "SHIPYARD_SSE_RETRY_MS": "100",
    "SHIPYARD_SUPERVISOR_TICK_S": "0.2",
    "SHIPYARD_RESTART_BACKOFF_S": "0.2",
    # Longer than the slowest request of the tests (/slow: 1.5 s), which must not be cut.
    "SHIPYARD_DRAIN_GRACE_S": "3",
    "SHIPYARD_HEALTH_CHECK_REQUEST_TIMEOUT_S": "1",
}

APP = r"""
import os, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("APP_VERSION", "0")
hung = threading.Event()
# sys.stdout is not safe to write from two threads at once (a write can be lost), and
# health checks are served while the flood is written.
stdout = threading.Lock()
if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if hung.is_set():
            time.sleep(3600)
        path = self.path.split("?")[0]
        if path == "/crash":
            os._exit(3)
        if path == "/hang":
            hung.set()
        if path == "/flood":
            with stdout:
                for i in range(100000):
                    sys.stdout.write(f"flood line {i}\n")
                sys.stdout.flush()
        if path == "/slow":
            time.sleep(1.5)
        body = f"version {VERSION}".encode()
        with stdout:
            print(f"served {path} as version {VERSION}", flush=True)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

print(f"version {VERSION} starting", flush=True)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""
ARCHIVE = targz({"app.py": APP, "requirements.txt": ""})


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = start_stack(tmp_path_factory.mktemp("edge"), FAST)
    yield running
    stop_stack(running.process)


def get(url: str, timeout: float = 10) -> tuple[int, str, str | None]:
    """(status, body, the deployment that answered) of a GET; raises on a refused call."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return (
                response.status,
                response.read().decode(),
                response.headers.get("X-Shipyard-Deployment"),
            )
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers.get("X-Shipyard-Deployment")


def new_project(stack, name: str, **run) -> dict:
    body = {
        "name": name,
        "runtime": "python",
        "run": {"start_command": "python app.py", "health_check_interval_s": 1, **run},
    }
    status, _, created = stack.request("POST", "/v1/projects", body)
    assert status == 201, created
    return created["data"]


def ship(stack, project: dict, version: str, **env) -> dict:
    variables = {"APP_VERSION": {"value": version}, **{k: {"value": v} for k, v in env.items()}}
    stack.request("PUT", f"/v1/projects/{project['id']}/env", {"vars": variables})
    running = wait(stack, deploy(stack, project["id"], ARCHIVE))
    assert running["status"] == "running", running
    return running


def deployment(stack, project: dict, deployment_id: str) -> dict:
    _, _, body = stack.request("GET", f"/v1/projects/{project['id']}/deployments/{deployment_id}")
    return body["data"]


def runtime_lines(stack, project: dict, deployment_id: str) -> list[dict]:
    lines, after = [], 0
    while True:
        _, _, page = stack.request(
            "GET",
            f"/v1/projects/{project['id']}/deployments/{deployment_id}/runtime-logs"
            f"?after={after}&limit=1000",
        )
        lines += page["data"]
        if not page["pagination"]["has_more"]:
            return lines
        after = int(page["pagination"]["next_cursor"])


def test_the_project_url_is_stable_and_switches_without_a_failed_request(stack):
    project = new_project(stack, "Stable")
    url = project["url"]
    assert url.startswith("http://127.0.0.1:")
    seen: list[tuple[int, str | None]] = []
    errors: list[str] = []
    stopping = threading.Event()

    def load() -> None:
        while not stopping.is_set():
            try:
                status, _, served_by = get(url + "/slow" if len(seen) % 10 == 0 else url)
                seen.append((status, served_by))
            except OSError as error:
                errors.append(str(error))
            time.sleep(0.02)

    first = ship(stack, project, "1")
    assert get(url)[:2] == (200, "version 1")
    client = threading.Thread(target=load)
    client.start()
    try:
        second = ship(stack, project, "2")
        redeployed = wait(
            stack, stack.request("POST", f"/v1/projects/{project['id']}/redeploy", {})[2]["data"]
        )
        _, _, rollback = stack.request(
            "POST", f"/v1/projects/{project['id']}/rollback", {"deployment_id": first["id"]}
        )
        rolled = wait(stack, rollback["data"])
        eventually(lambda: seen[-1][1] == rolled["id"], what="an answer of the rollback")
    finally:
        stopping.set()
        client.join()

    assert errors == [] and seen
    assert [s for s in seen if s[0] != 200] == []
    order = [first["id"], second["id"], redeployed["id"], rolled["id"]]
    served = [order.index(deployment_id) for _, deployment_id in seen]
    assert served == sorted(served), "an old version answered after a newer one"
    assert served[-1] == 3 and get(url)[1] == "version 1"
    _, _, current = stack.request("GET", f"/v1/projects/{project['id']}")
    assert current["data"]["url"] == url
    assert current["data"]["current_deployment_id"] == rolled["id"]
    assert get(rolled["url"])[1] == "version 1"  # a deployment keeps its own URL too
    # The replaced ones are stopped once drained.
    eventually(lambda: deployment(stack, project, second["id"])["status"] == "stopped")
    eventually(lambda: _answers(second["url"]) is None, 10, "the drained app's stop")

    assert get(url + "?token=hunter2secret")[0] == 200
    _, _, access = stack.request("GET", f"/v1/projects/{project['id']}/access-logs?limit=1000")
    entries = access["data"]
    # A query string (tokens, say) is in no answer, and in no file the edge writes.
    edge_files = (stack.state_dir / "edge").rglob("*")
    assert not any(b"hunter2secret" in f.read_bytes() for f in edge_files if f.is_file())
    assert len(entries) >= len(seen)
    # Each version the client saw is in the edge's log (on a slow machine a short-lived
    # one may have come and gone between two of the client's requests).
    assert {e["deployment_id"] for e in entries} >= {served_by for _, served_by in seen}
    entry = entries[0]
    assert entry["method"] == "GET" and entry["status"] == 200 and entry["bytes"] == 9
    assert entry["duration_ms"] >= 0 and "?" not in entry["path"]


def test_a_crashing_app_is_restarted_and_served_again_with_its_runtime_log(stack):
    project = new_project(stack, "Crashy")
    running = ship(stack, project, "7")
    with pytest.raises(OSError):
        urllib.request.urlopen(running["url"] + "/crash", timeout=5)

    restarted = eventually(
        lambda: (
            (d := deployment(stack, project, running["id"]))["runtime"]
            and d["runtime"]["restarts"] == 1
            and d["runtime"]["state"] == "up"
            and d
        ),
        what="the restart",
    )
    assert restarted["runtime"]["last_exit_code"] == 3
    assert restarted["runtime"]["last_restart_at"]
    assert get(project["url"])[:2] == (200, "version 7")

    def crashed_events():
        _, _, events = stack.request("GET", "/v1/events?type=deployment.crashed")
        return [e["data"] for e in events["data"] if e["data"]["deployment_id"] == running["id"]]

    # The restart is a deployment.crashed event, listed (and sent to webhooks) once.
    crashed = eventually(crashed_events, what="the deployment.crashed event")
    assert [(e["restarts"], e["status"]) for e in crashed] == [(1, "running")]

    lines = runtime_lines(stack, project, running["id"])
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    messages = [(line["phase"], line["message"]) for line in lines]
    assert messages.count(("app", "version 7 starting")) == 2
    crash = next(i for i, m in enumerate(messages) if "crashed" in m[1])
    assert messages[crash][0] == "runtime"
    assert messages.index(("app", "version 7 starting")) < crash
    assert any(m == "runtime" and "Restarted (restart #1)" in t for m, t in messages[crash:])

    _, _, text = stack.request(
        "GET",
        f"/v1/projects/{project['id']}/deployments/{running['id']}/runtime-logs",
        headers={"Accept": "text/plain"},
    )
    assert "[app] version 7 starting\n" in text


def test_a_hung_app_is_caught_by_its_health_checks_and_restarted(stack):
    project = new_project(stack, "Hung")
    running = ship(stack, project, "3", IGNORE_TERM="1")
    assert get(running["url"] + "/hang")[0] == 200  # what comes after it hangs
    restarted = eventually(
        lambda: (
            (d := deployment(stack, project, running["id"]))["runtime"]
            and d["runtime"]["restarts"] >= 1
            and d
        ),
        timeout_s=60,
        what="the restart of a hung app that ignores SIGTERM",
    )
    assert restarted["status"] == "running"
    assert eventually(lambda: get(project["url"])[1] == "version 3")
    messages = [line["message"] for line in runtime_lines(stack, project, running["id"])]
    assert any("Health check failed (3 of 3)" in m for m in messages)


def test_a_flood_is_kept_or_dropped_visibly(stack):
    project = new_project(stack, "Flood")
    running = ship(stack, project, "1")
    assert get(running["url"] + "/flood", timeout=60)[0] == 200
    lines: list[dict] = []
    deadline = time.monotonic() + 120
    while not any(line["message"] == "served /flood as version 1" for line in lines[-1000:]):
        assert time.monotonic() < deadline, "the flood's end never reached the log"
        _, _, page = stack.request(
            "GET",
            f"/v1/projects/{project['id']}/deployments/{running['id']}/runtime-logs"
            f"?after={lines[-1]['seq'] if lines else 0}&limit=1000",
        )
        lines += page["data"]
        if not page["data"]:
            time.sleep(0.2)
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    flood = [line["message"] for line in lines if line["message"].startswith("flood line ")]
    dropped = sum(
        int(line["message"].strip("[]").split()[0])
        for line in lines
        if line["phase"] == "runtime" and line["message"].endswith("lines dropped]")
    )
    assert len(flood) + dropped == 100000
    assert flood == sorted(flood, key=lambda m: int(m.split()[-1]))


def test_the_edge_killed_comes_back_with_its_routes(stack):
    project = new_project(stack, "Edge")
    ship(stack, project, "5")
    state = json.loads((stack.state_dir / "edge" / "caddy.json").read_text())
    os.kill(state["pid"], signal.SIGKILL)
    assert eventually(lambda: _answers(project["url"]) == "version 5", what="the edge's restart")
    again = json.loads((stack.state_dir / "edge" / "caddy.json").read_text())
    assert again["pid"] != state["pid"]


def crash_three_times(stack, project: dict, running: dict) -> dict:
    """Crash a running deployment's app three times (each after its restart answers); the
    deployment once it is `failed`."""
    for restarts in range(3):
        eventually(lambda: _answers(running["url"]) is not None, what="the app's start")
        with pytest.raises(OSError):
            urllib.request.urlopen(running["url"] + "/crash", timeout=5)
        if restarts < 2:
            eventually(
                lambda n=restarts: (
                    (deployment(stack, project, running["id"])["runtime"] or {}).get("restarts")
                    == n + 1
                ),
                what="a restart",
            )
    return eventually(
        lambda: (d := deployment(stack, project, running["id"]))["status"] == "failed" and d
    )


def test_auto_rollback_after_three_crashes_brings_back_the_previous_deployment(stack):
    project = new_project(stack, "Rollback", auto_rollback=True)
    good = ship(stack, project, "1")
    bad = ship(stack, project, "2")
    failed = crash_three_times(stack, project, bad)
    assert failed["error_code"] == "crashed" and failed["runtime"]["state"] == "crashed"

    def rolled_back():
        _, _, now = stack.request("GET", f"/v1/projects/{project['id']}")
        current = now["data"]["current_deployment_id"]
        return current not in (good["id"], bad["id"]) and current

    current = eventually(rolled_back, what="the automatic rollback")
    rollback = deployment(stack, project, current)
    assert (rollback["source"]["type"], rollback["source"]["deployment_id"]) == (
        "rollback",
        good["id"],
    )
    assert get(project["url"])[1] == "version 1"


def test_a_project_deleted_while_its_app_restarts_leaves_nothing_running(stack):
    project = new_project(stack, "Deleted")
    running = ship(stack, project, "1")
    with pytest.raises(OSError):
        urllib.request.urlopen(running["url"] + "/crash", timeout=5)
    status, _, _ = stack.request("DELETE", f"/v1/projects/{project['id']}")
    assert status == 204
    time.sleep(2)
    state = stack.state_dir / "apps" / f"{running['id']}.json"
    if state.exists():
        pid = json.loads(state.read_text())["pid"]
        assert not leader_alive(pid, None)
    with pytest.raises(OSError):
        urllib.request.urlopen(project["url"], timeout=2)


def _answers(url: str) -> str | None:
    """What the URL answers; None when nothing does (refused, or cut off by the stop)."""
    try:
        return get(url, timeout=2)[1]
    except (OSError, http.client.HTTPException):
        return None


def test_the_cli_opens_shows_status_and_follows_the_runtime_log(stack):
    project = new_project(stack, "Cli")
    running = ship(stack, project, "9")
    opened = run_cli(stack, "open", "--print", "--project", project["id"])
    assert opened.returncode == 0 and opened.stdout.strip() == project["url"]
    # `runtime` is recorded at the supervisor's first look after going live
    # (docs/runtimes.md); until then `status` has no runtime row.
    eventually(lambda: deployment(stack, project, running["id"])["runtime"], what="the first look")
    status = run_cli(stack, "status", "--project", project["slug"])
    assert status.returncode == 0, status.stderr
    assert project["url"] in status.stdout and running["id"] in status.stdout
    rows = dict(line.split(":", 1) for line in status.stdout.splitlines())
    assert rows["running"].strip().startswith(running["id"])
    assert rows["runtime"].strip().startswith("up, 0 restarts")

    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHIPYARD_"))}
    environment.update(SHIPYARD_URL=stack.url, SHIPYARD_API_KEY=stack.key)
    follower = subprocess.Popen(
        [sys.executable, "-m", "shipyard_cli", "logs", "--runtime", "-f", "-p", project["id"]],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert get(project["url"] + "/hello-from-the-test")[0] == 200
        time.sleep(1)
        # A new deployment replaces the followed one: once it is stopped (and drained),
        # the follower gets `done` and ends.
        ship(stack, project, "10")
        out, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    assert "[app] version 9 starting" in out
    assert "[app] served /hello-from-the-test as version 9" in out


def test_the_runtime_log_stream_arrives_whole_with_a_real_eventsource(stack, node):  # noqa: F811
    project = new_project(stack, "Stream")
    running = ship(stack, project, "4")
    url = f"{stack.url}/v1/projects/{project['id']}/deployments/{running['id']}/runtime-logs/stream"
    client = subprocess.Popen(
        [node, str(SCRIPT), url, stack.key], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        # Lines keep coming for several of the stack's 1 s stream responses.
        for i in range(20):
            get(f"{project['url']}/line-{i}")
            time.sleep(0.2)
        ship(stack, project, "5")  # the followed deployment is replaced, so it stops
        out, _ = client.communicate(timeout=120)
    finally:
        if client.poll() is None:
            client.kill()
    seen = json.loads(out)
    assert seen["closed_by"] == "done" and seen["done"] == "stopped"
    assert len(seen["requests"]) > 3  # it reconnected, with Last-Event-ID
    seqs = [line["seq"] for line in seen["logs"]]
    assert seqs == list(range(1, len(seqs) + 1))
    served = [line["message"] for line in seen["logs"] if "served /line-" in line["message"]]
    assert served == [f"served /line-{i} as version 4" for i in range(20)]


def test_a_stack_killed_with_its_apps_running_serves_and_supervises_them_again(tmp_path):
    with external_moto() as moto_port:
        env = {**FAST, "SHIPYARD_MOTO_PORT": str(moto_port)}
        first = start_stack(tmp_path, env)
        try:
            project = new_project(first, "Adopted")
            ship(first, project, "6")
        finally:
            # Killed, not stopped: its apps and its edge are left behind.
            first.process.kill()
            first.process.wait()
        second = start_stack(tmp_path, env)
        try:
            assert eventually(lambda: _answers(project["url"]) == "version 6")
            # Once the new stack has adopted the app, it supervises it.
            log = tmp_path / "stack.log"
            eventually(lambda: "1 adopted" in log.read_text(), what="the adoption")
            _, _, now = second.request("GET", f"/v1/projects/{project['id']}")
            current = deployment(second, project, now["data"]["current_deployment_id"])
            # Supervised by the new stack: a crash is restarted.
            with pytest.raises(OSError):
                urllib.request.urlopen(current["url"] + "/crash", timeout=5)
            eventually(
                lambda: (
                    (deployment(second, project, current["id"])["runtime"] or {}).get("restarts")
                    == 1
                ),
                what="the restart by the new stack",
            )
            assert eventually(lambda: _answers(project["url"]) == "version 6")
        finally:
            stop_stack(second.process)
        with pytest.raises(OSError):
            urllib.request.urlopen(project["url"], timeout=2)


def test_two_promotes_racing_end_with_the_edge_on_the_running_deployment(stack):
    project = new_project(stack, "Race")
    created = [deploy(stack, project["id"], ARCHIVE) for _ in range(2)]
    ended = [wait(stack, item) for item in created]
    running = [item for item in ended if item["status"] == "running"]
    _, _, now = stack.request("GET", f"/v1/projects/{project['id']}")
    current = now["data"]["current_deployment_id"]
    statuses = {deployment(stack, project, item["id"])["status"] for item in created}
    assert running and statuses <= {"running", "stopped"} and "running" in statuses
    assert [
        d["id"] for d in created if deployment(stack, project, d["id"])["status"] == "running"
    ] == [current]
    assert eventually(lambda: get(project["url"])[2] == current, 10, "the edge's switch")


def test_a_crash_looping_preview_fails_and_production_is_not_rolled_back(stack, tmp_path):
    from tests.git_support import commit, make_repo

    # Given: a git project that rolls back on crashes, production running from main and a
    # preview of a branch
    repo = make_repo(tmp_path / "repo", {"app.py": APP, "requirements.txt": ""}, "App")
    commit(repo, {"notes.txt": "a feature"}, "Feature", branch="feature")
    body = {
        "name": "Previews crash",
        "runtime": "python",
        "git": {"repository": f"file://{repo}", "branch": "main"},
        "run": {
            "start_command": "python app.py",
            "health_check_interval_s": 1,
            "auto_rollback": True,
        },
    }
    status, _, created = stack.request("POST", "/v1/projects", body)
    assert status == 201, created
    project = created["data"]
    deployments_path = f"/v1/projects/{project['id']}/deployments"

    def deploy_ref(ref: str) -> dict:
        status, _, made = stack.request("POST", deployments_path, {"git": {"ref": ref}})
        assert status == 202, made
        running = wait(stack, made["data"])
        assert running["status"] == "running", running
        return running

    production = deploy_ref("main")
    preview = deploy_ref("feature")
    assert preview["environment"] == "preview"

    # When: the preview crashes three times within its first minutes
    failed = crash_three_times(stack, project, preview)

    # Then: it fails, and production keeps running, with no rollback made
    assert failed["error_code"] == "crashed"
    time.sleep(2)  # a rollback, had one started, would be listed by now
    _, _, listed = stack.request("GET", deployments_path)
    assert [d["source"]["type"] for d in listed["data"]] == ["git", "git"]
    assert deployment(stack, project, production["id"])["status"] == "running"
    _, _, now = stack.request("GET", f"/v1/projects/{project['id']}")
    assert now["data"]["current_deployment_id"] == production["id"]
