"""The local stack SIGKILLed at each step of the pipeline, then started again on the same
moto: every deployment ends running, failed or canceled within its timeouts, none is built
twice, and the project serves its running deployment.

Each step is reached deterministically: a build that sleeps (building), or the proxy in
front of moto holding the one AWS call that would move the deployment on (the builds
queue's receive: queued; StartExecution: built; the deploy task's answer: deploying; the
promote transaction: promoting), or an app whose health check fails for a while
(health-checking). The kill takes the whole process group; the builds die with it (their
sandbox dies with its parent), while apps and the edge, in sessions of their own, survive
and are found by the next stack (local/recovery.py, runtimes/local.py).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import requests

from tests.pipeline_support import targz
from tests.waiting import eventually

pytestmark = pytest.mark.xdist_group("fault-stack")

ENDED = ("running", "failed", "canceled", "stopped")

APP = r"""
import json, os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BEHAVIOUR = json.load(open("behaviour.json"))
time.sleep(BEHAVIOUR.get("listen_after_s", 0))
STARTED = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        healthy = time.monotonic() - STARTED >= BEHAVIOUR.get("healthy_after_s", 0)
        status = 200 if self.path != "/health" or healthy else 503
        body = BEHAVIOUR["name"].encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""


def archive(name: str, build_sleep_s: float = 0, **behaviour) -> bytes:
    return targz(
        {
            "app.py": APP,
            "Procfile": "web: python app.py\n",
            "requirements.txt": "# the standard library only\n",
            "build.sh": f"echo building {name}\nsleep {build_sleep_s}\n",
            "behaviour.json": json.dumps({"name": name, **behaviour}),
        }
    )


def deploy(stack, project_id: str, data: bytes) -> dict:
    status, _, body = stack.request("POST", f"/v1/projects/{project_id}/uploads", {})
    assert status == 201, body
    post = body["data"]
    sent = requests.post(
        post["url"], data=post["fields"], files={"file": ("a.tgz", data)}, timeout=30
    )
    assert sent.status_code in (200, 204), sent.text
    status, _, body = stack.request(
        "POST", f"/v1/projects/{project_id}/deployments", {"upload_id": post["id"]}
    )
    assert status == 202, body
    return body["data"]


def get(stack, deployment: dict) -> dict:
    path = f"/v1/projects/{deployment['project_id']}/deployments/{deployment['id']}"
    status, _, body = stack.request("GET", path)
    assert status == 200, body
    return body["data"]


def logs(stack, deployment: dict) -> str:
    path = f"/v1/projects/{deployment['project_id']}/deployments/{deployment['id']}/logs"
    status, _, body = stack.request("GET", path + "?limit=1000", headers={"Accept": "text/plain"})
    assert status == 200, body
    return body


def reach(stack, deployment: dict, status: str, line: str = "", timeout_s: float = 60) -> None:
    """Wait until the deployment is in `status` with `line` in its log."""

    def there():
        current = get(stack, deployment)
        assert current["status"] not in ENDED or current["status"] == status, current
        return current["status"] == status and (not line or line in logs(stack, deployment))

    eventually(there, timeout_s, f"{status} {line!r}")


def ended(stack, deployment: dict, timeout_s: float = 90) -> dict:
    def done():
        current = get(stack, deployment)
        return current if current["status"] in ENDED else None

    return eventually(done, timeout_s, "the deployment to end")


def serves(project_url: str, deployment_id: str, name: str) -> None:
    """The project's URL answers with this deployment (the edge names it in a header)."""

    def answered():
        try:
            with urllib.request.urlopen(project_url, timeout=5) as response:
                return (
                    response.headers.get("X-Shipyard-Deployment") == deployment_id
                    and response.read().decode() == name
                )
        except (urllib.error.URLError, OSError):
            return False

    eventually(answered, 30, f"{project_url} to serve {deployment_id}")


@pytest.fixture(scope="module")
def project(fault_stack):
    stack = fault_stack.stack
    status, _, body = stack.request(
        "POST",
        "/v1/projects",
        {
            "name": "Killed",
            "build": {"build_command": "sh build.sh"},
            "run": {"health_check_path": "/health", "health_check_timeout_s": 60},
        },
    )
    assert status == 201, body
    return body["data"]


# step -> (what the archive does, the AWS call the proxy holds, the status and log line
# that say the step is reached, the outcome after the restart)
STEPS = {
    "queued": ({}, ("AmazonSQS.ReceiveMessage", "builds"), "pending", "", "running"),
    "building": ({"build_sleep_s": 300}, None, "building", "building ", "failed"),
    "built": ({}, ("AWSStepFunctions.StartExecution",), "built", "", "running"),
    "deploying": ({}, ("AWSStepFunctions.SendTaskSuccess",), "deploying", "Started at", "running"),
    "health-checking": (
        {"healthy_after_s": 5},
        None,
        "deploying",
        "Health check not passing yet",
        "running",
    ),
    "promoting": (
        {},
        ("TransactWriteItems", "releases"),
        "deploying",
        "Health check passed",
        "running",
    ),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_killed_at_each_step_every_deployment_ends_and_the_project_serves(
    step, fault_stack, project, record
):
    behaviour, held, status, line, outcome = STEPS[step]
    name = f"app-{step}"
    stack = fault_stack.stack
    rule = fault_stack.proxy.add("stall", *held) if held else None
    if step == "queued":
        # A receive already on its way to moto when the rule came could still take the
        # message: let those end (the pump's long polls last 1 s).
        time.sleep(2.5)
        rule.hits = 0
    try:
        deployment = deploy(stack, project["id"], archive(name, **behaviour))
        if rule is not None:
            fault_stack.proxy.wait_for_hit(rule, 60)
        reach(stack, deployment, status, line)
        fault_stack.kill()
    finally:
        if rule is not None:
            fault_stack.proxy.remove(rule)
    stack = fault_stack.restart()

    final = ended(stack, deployment)
    text = logs(stack, deployment)
    record(f"SIGKILL at {step}", final["status"])
    assert final["status"] == outcome, (final, text)
    # Built once: one build started, one build output.
    assert text.count("Building (local)") <= 1, text
    assert text.count(f"building {name}") <= 1, text
    if step == "building":
        assert final["error_code"] == "internal_error", final
        # The build's processes died with the stack that ran them.
        assert subprocess.run(["pgrep", "-f", "sleep 300"], capture_output=True).stdout == b""
    _, _, current = stack.request("GET", f"/v1/projects/{project['id']}")
    running_id = current["data"]["current_deployment_id"]
    if outcome == "running":
        assert running_id == deployment["id"], current
    if running_id is not None:
        served = logs(stack, {"project_id": project["id"], "id": running_id})
        served_name = next(f"app-{s}" for s in STEPS if f"building app-{s}\n" in served)
        serves(current["data"]["url"], running_id, served_name)
