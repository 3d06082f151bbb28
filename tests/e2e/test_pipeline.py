"""The deployment pipeline end to end on the real local stack: the examples are packed,
uploaded through presigned POSTs to the stack's moto, built, deployed, health-checked and
served at URLs that answer; rollback brings the old version back; a restarted stack
starts the running apps again."""

from __future__ import annotations

import io
import json
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, external_moto, start_stack, stop_stack

EXAMPLES = ROOT / "examples"
FAST = {"SHIPYARD_SSE_WAIT_S": "2", "SHIPYARD_SSE_RETRY_MS": "100"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = start_stack(tmp_path_factory.mktemp("pipeline"), FAST)
    yield running
    stop_stack(running.process)


def pack(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                tar.add(path, arcname=str(path.relative_to(directory)))
    return buffer.getvalue()


def fetch(url: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return None


def upload(stack, project_id: str, archive: bytes) -> str:
    import requests

    status, _, body = stack.request("POST", f"/v1/projects/{project_id}/uploads", {})
    assert status == 201, body
    post = body["data"]
    sent = requests.post(
        post["url"], data=post["fields"], files={"file": ("app.tar.gz", archive)}, timeout=30
    )
    assert sent.status_code in (200, 204), sent.text
    return post["id"]


def deploy(stack, project_id: str, archive: bytes) -> dict:
    upload_id = upload(stack, project_id, archive)
    status, _, body = stack.request(
        "POST", f"/v1/projects/{project_id}/deployments", {"upload_id": upload_id}
    )
    assert status == 202, body
    return body["data"]


def wait(stack, deployment: dict, timeout_s: float = 120) -> dict:
    """Long-poll GET .../wait until the deployment is running or has ended."""
    path = f"/v1/projects/{deployment['project_id']}/deployments/{deployment['id']}/wait"
    deadline = time.monotonic() + timeout_s
    while True:
        status, _, body = stack.request("GET", path + "?timeout_s=10")
        assert status == 200, body
        if body["data"]["status"] in ("running", "failed", "canceled", "stopped"):
            return body["data"]
        assert time.monotonic() < deadline, body["data"]


def follow(stack, deployment: dict) -> list[dict]:
    """Read the SSE log stream as EventSource does: reconnect with Last-Event-ID after each
    response until the server answers 204."""
    path = f"/v1/projects/{deployment['project_id']}/deployments/{deployment['id']}/logs/stream"
    lines, last_id, done = [], None, []
    for _ in range(200):
        headers = {"Authorization": f"Bearer {stack.key}", "Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        request = urllib.request.Request(stack.url + path, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status == 204:
                return lines, done
            body = response.read().decode()
        for block in body.split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "id" in fields:
                last_id = fields["id"]
            if "data" in fields:
                data = json.loads(fields["data"])
                if data["type"] == "log":
                    lines.append(data)
                elif data["type"] == "done":
                    done.append(data["status"])
    raise AssertionError("the stream never ended")


def test_the_static_example_reaches_running_and_its_url_answers(stack):
    _, _, project = stack.request("POST", "/v1/projects", {"name": "Static example"})
    deployment = deploy(stack, project["data"]["id"], pack(EXAMPLES / "static-site"))
    assert deployment["status"] == "pending"

    running = wait(stack, deployment)

    assert running["status"] == "running", running
    assert running["framework"] == "static"
    status, page = fetch(running["url"])
    assert status == 200 and "It ships." in page
    _, _, current = stack.request("GET", f"/v1/projects/{project['data']['id']}")
    # The project's own URL, assigned at creation, serves the running deployment.
    assert current["data"]["url"] == project["data"]["url"] != running["url"]
    assert "It ships." in fetch(current["data"]["url"])[1]
    lines, done = follow(stack, deployment)
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert done == ["running"]
    _, _, page = stack.request(
        "GET",
        f"/v1/projects/{project['data']['id']}/deployments/{deployment['id']}/logs?limit=1000",
    )
    assert [line["seq"] for line in page["data"]] == [line["seq"] for line in lines]


def test_the_python_example_runs_and_a_rollback_brings_back_the_old_version(stack):
    _, _, created = stack.request(
        "POST",
        "/v1/projects",
        {"name": "Python example", "run": {"health_check_path": "/health"}},
    )
    project_id = created["data"]["id"]
    archive = pack(EXAMPLES / "python-app")
    versions = {}
    for version in ("1", "2"):
        stack.request(
            "PUT", f"/v1/projects/{project_id}/env", {"vars": {"APP_VERSION": {"value": version}}}
        )
        running = wait(stack, deploy(stack, project_id, archive))
        assert running["status"] == "running", running
        status, page = fetch(running["url"] + "/api/info")
        assert status == 200 and json.loads(page)["version"] == version
        versions[version] = running
    deadline = time.monotonic() + 30
    while fetch(versions["1"]["url"]) is not None:  # replaced, stopped once drained
        assert time.monotonic() < deadline, "the replaced app kept running"
        time.sleep(0.2)

    status, _, body = stack.request(
        "POST", f"/v1/projects/{project_id}/rollback", {"deployment_id": versions["1"]["id"]}
    )
    assert status == 200 and body["data"]["status"] == "deploying"
    rolled = wait(stack, body["data"])

    assert rolled["status"] == "running", rolled
    assert json.loads(fetch(rolled["url"] + "/api/info")[1])["version"] == "1"
    _, _, releases = stack.request("GET", f"/v1/projects/{project_id}/releases")
    assert [r["deployment_id"] for r in releases["data"]] == [
        rolled["id"],
        versions["2"]["id"],
        versions["1"]["id"],
    ]


def test_a_restarted_stack_starts_the_running_apps_again(tmp_path):
    with external_moto() as moto_port:
        env = {**FAST, "SHIPYARD_MOTO_PORT": str(moto_port)}
        first = start_stack(tmp_path, env)
        try:
            _, _, project = first.request("POST", "/v1/projects", {"name": "Survivor"})
            project_id = project["data"]["id"]
            running = wait(first, deploy(first, project_id, pack(EXAMPLES / "static-site")))
            assert running["status"] == "running", running
            assert fetch(running["url"])[0] == 200
        finally:
            stop_stack(first.process)
        assert fetch(running["url"]) is None  # Ctrl-C stopped the app it ran

        second = start_stack(tmp_path, env)
        try:
            deadline = time.monotonic() + 60
            while True:
                _, _, current = second.request("GET", f"/v1/projects/{project_id}")
                answer = fetch(current["data"]["url"])
                if answer and answer[0] == 200:
                    break
                assert time.monotonic() < deadline, "the running app was not started again"
                time.sleep(0.2)
            assert "It ships." in answer[1]
            assert current["data"]["current_deployment_id"] == running["id"]
        finally:
            stop_stack(second.process)
