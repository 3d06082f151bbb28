"""The local stack as a newcomer meets it: one command, a printed key, HTTP on a port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

from tests.e2e.conftest import ROOT, external_moto, start_stack, stop_stack
from tests.e2e.test_pipeline import deploy
from tests.pipeline_support import targz


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _children(pid: int) -> list[int]:
    listed = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    found = [int(p) for p in listed.stdout.split()]
    return found + [grandchild for child in found for grandchild in _children(child)]


def test_stack_serves_the_api_with_the_printed_key(tmp_path):
    stack = start_stack(tmp_path)
    try:
        log = (tmp_path / "stack.log").read_text()
        assert stack.key in log  # the first key is printed
        status, headers, body = stack.request("POST", "/v1/projects", {"name": "Hello"})
        assert status == 201 and headers["X-Request-ID"].startswith("req_")
        status, _, body = stack.request("GET", f"/v1/projects/{body['data']['id']}")
        assert status == 200 and body["data"]["slug"] == "hello"
        status, _, body = stack.request("GET", "/v1/nowhere")
        assert status == 404 and body["error"]["code"] == "not_found"
        status, headers, body = stack.request("OPTIONS", "/v1/projects")
        assert status == 405 and body["error"]["code"] == "method_not_allowed"
        assert headers["X-Request-ID"] == body["error"]["request_id"]
        with urllib.request.urlopen(stack.url + "/v1/openapi.json") as response:
            assert response.status == 200
    finally:
        stop_stack(stack.process)


def test_ctrl_c_leaves_no_orphan_and_admin_command_works(tmp_path):
    stack = start_stack(tmp_path)
    admin = subprocess.run(
        [
            sys.executable,
            "-m",
            "chalicelib.admin",
            "create-workspace",
            "--name",
            "CI",
            "--tier",
            "pro",
        ],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        check=True,
    )
    created = json.loads(admin.stdout)
    assert created["workspace_id"].startswith("ws_") and created["api_key"].startswith("sk_live_")
    status, _, _ = stack.request("GET", "/v1/projects", key=created["api_key"])
    assert status == 200
    group = [stack.process.pid, *_children(stack.process.pid)]
    assert len(group) >= 2  # the stack and its moto server
    assert stop_stack(stack.process) == 0
    assert [pid for pid in group if _alive(pid)] == []


def test_state_survives_an_api_restart_while_moto_keeps_running(tmp_path):
    with external_moto() as moto_port:
        env = {"SHIPYARD_MOTO_PORT": str(moto_port)}
        first = start_stack(tmp_path, env)
        _, _, body = first.request("POST", "/v1/projects", {"name": "Kept"})
        stop_stack(first.process)  # a moto the stack did not start is left running
        second = start_stack(tmp_path, env)
        try:
            assert second.key == first.key
            status, _, got = second.request("GET", f"/v1/projects/{body['data']['id']}")
            assert status == 200 and got["data"]["name"] == "Kept"
        finally:
            stop_stack(second.process)


def test_requests_that_wait_hold_no_turn_and_let_the_next_ones_run(tmp_path):
    """The local gateway runs a few requests at once, in turn (local/gateway.Turns); one
    that waits (a long-poll here) gives up its turn after half a second."""
    # Given: a stack that runs one request at a time, and a deployment whose build takes
    # a minute
    stack = start_stack(tmp_path, {"SHIPYARD_LOCAL_CONCURRENCY": "1"})
    try:
        status, _, body = stack.request(
            "POST", "/v1/projects", {"name": "slow", "build": {"build_command": "sleep 60"}}
        )
        assert status == 201, body
        project_id = body["data"]["id"]
        made = deploy(stack, project_id, targz({"index.html": "<h1>slow</h1>"}))
        deployment = f"/v1/projects/{project_id}/deployments/{made['id']}"

        # When: three clients long-poll it, each for 10 s
        polls: list[tuple[int, str, float]] = []

        def long_poll() -> None:
            started = time.monotonic()
            status, _, body = stack.request("GET", deployment + "/wait?timeout_s=10")
            polls.append((status, body["data"]["status"], time.monotonic() - started))

        threads = [threading.Thread(target=long_poll) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(2)

        # Then: a request after them is answered at once, not after 10 s (or 30)
        started = time.monotonic()
        status, _, body = stack.request("GET", f"/v1/projects/{project_id}")
        assert status == 200 and body["data"]["id"] == project_id
        assert time.monotonic() - started < 5
        for thread in threads:
            thread.join(60)
        # ... while each long-poll did wait its 10 s, on a deployment still building
        assert [status for status, _, _ in polls] == [200, 200, 200]
        assert all(state in ("queued", "building") for _, state, _ in polls), polls
        assert all(waited >= 9 for _, _, waited in polls), polls
    finally:
        stop_stack(stack.process)
