"""The real local stack with the sandbox on: a secret that the build prints with its whole
environment and the app prints at start is `***` in the log as the API serves it (JSON,
text, SSE) and in the deployment; the app still serves its URL from its sandbox."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import start_stack, stop_stack
from tests.e2e.test_pipeline import EXAMPLES, FAST, deploy, fetch, follow, pack, wait

TOKEN = "tok_e2e_7c1f0a9d2b"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = start_stack(tmp_path_factory.mktemp("isolation"), FAST)
    yield running
    stop_stack(running.process)


def test_a_secret_printed_by_the_build_and_the_app_is_stars_everywhere(stack):
    # Given a project whose build prints its environment and whose app prints a secret
    _, _, health = stack.request("GET", "/v1/health")
    assert health["data"]["sandbox"] == "on"
    settings = {
        "name": "Leaky",
        "build": {"build_command": "env | sort"},
        "run": {
            "health_check_path": "/health",
            "start_command": 'echo "token at start: $API_TOKEN"; exec python3 app.py',
        },
    }
    _, _, created = stack.request("POST", "/v1/projects", settings)
    project_id = created["data"]["id"]
    env = {"API_TOKEN": {"value": TOKEN, "secret": True}, "APP_VERSION": {"value": "7"}}
    stack.request("PUT", f"/v1/projects/{project_id}/env", {"vars": env})

    # When it is deployed
    running = wait(stack, deploy(stack, project_id, pack(EXAMPLES / "python-app")))

    # Then the app serves its URL from its sandbox
    assert running["status"] == "running", (running["error_message"], running["error_code"])
    status, page = fetch(running["url"] + "/api/info")
    assert status == 200 and json.loads(page)["version"] == "7"
    # and the secret is stars in every form the log is served in
    path = f"/v1/projects/{project_id}/deployments/{running['id']}/logs"
    _, _, page = stack.request("GET", path + "?limit=1000")
    messages = [line["message"] for line in page["data"]]
    assert "API_TOKEN=***" in messages and "token at start: ***" in messages
    assert "APP_VERSION=7" in messages
    streamed, _ = follow(stack, running)
    _, _, listed = stack.request("GET", f"/v1/projects/{project_id}/deployments")
    for served in (page, streamed, listed, running):
        assert TOKEN not in json.dumps(served)
