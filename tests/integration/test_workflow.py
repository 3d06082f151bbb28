"""The whole pipeline in one process: moto's mock_aws with its executing Step Functions
backend running infra/deploy-workflow.asl.json, the local pump serving the app's own
queue handlers, LocalBuilder builds and LocalProcessRuntime apps that answer real HTTP.
No workflow interpreter of ours: moto runs the definition."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from tests.integration.conftest import deploy_archive, log_lines, wait_for
from tests.pipeline_support import targz

APP = """
import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = os.environ.get("MODE", "ok")
VERSION = os.environ.get("APP_VERSION", "?")
health_calls = []

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            health_calls.append(1)
            if MODE == "never" or (MODE == "flaky" and len(health_calls) == 1):
                self.send_response(503)
                self.end_headers()
                return
        body = ("version " + VERSION).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

if MODE == "crash":
    print("missing DATABASE_URL", flush=True)
    sys.exit(1)
print("listening", flush=True)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""
ARCHIVE = targz({"app.py": APP, "Procfile": "web: python app.py"})


pytestmark = pytest.mark.workflows


@pytest.fixture
def app_project(api):
    created = api.post(
        "/v1/projects",
        {"name": "Web", "run": {"health_check_path": "/health", "health_check_timeout_s": 3}},
    )
    return created.json["data"]


def set_env(api, project, **values):
    body = {"vars": {k: {"value": v} for k, v in values.items()}}
    assert api.put(f"/v1/projects/{project['id']}/env", body).status_code == 200


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except (urllib.error.URLError, OSError):
        return None


def deploy(api, project, **env):
    set_env(api, project, **env)
    return deploy_archive(api, project["id"], ARCHIVE)


def messages(api, deployment, phase=None):
    return [
        line["message"]
        for line in log_lines(api, deployment)
        if phase is None or line["phase"] == phase
    ]


def test_an_app_builds_deploys_passes_its_health_check_and_serves(api, app_project, pump):
    deployment = deploy(api, app_project, APP_VERSION="1")

    running = wait_for(api, deployment, ("running", "failed"))

    assert running["status"] == "running", running
    assert running["url"].startswith("http://127.0.0.1:")
    assert running["release_id"].startswith("rel_")
    assert running["finished_at"] is not None
    assert fetch(running["url"]) == "version 1"
    project = api.get(f"/v1/projects/{app_project['id']}").json["data"]
    # The project's own URL (the edge's port for it) serves the running deployment.
    assert project["status"] == "running" and project["url"] != running["url"]
    assert fetch(project["url"]) == "version 1"
    assert project["current_deployment_id"] == deployment["id"]
    system = messages(api, deployment, "system")
    assert [m for m in system if m in ("Building (local)", "Built", "Deploying")] == [
        "Building (local)",
        "Built",
        "Deploying",
    ]
    assert system[-1] == f"Running at {running['url']}"
    assert "listening" in messages(api, deployment, "deploy")
    releases = api.get(f"/v1/projects/{app_project['id']}/releases").json["data"]
    assert [(r["version"], r["deployment_id"]) for r in releases] == [(1, deployment["id"])]


def test_a_health_check_that_fails_once_is_retried_then_passes(api, app_project, pump):
    deployment = deploy(api, app_project, MODE="flaky")

    running = wait_for(api, deployment, ("running", "failed"))

    assert running["status"] == "running", running
    deploy_lines = messages(api, deployment, "deploy")
    assert any(m.startswith("Health check not passing yet") for m in deploy_lines)
    assert any(m.startswith("Health check passed") for m in deploy_lines)


def test_a_version_that_never_gets_healthy_leaves_the_old_one_serving(api, app_project, pump):
    from chalicelib.pipeline import engines

    old = wait_for(api, deploy(api, app_project, APP_VERSION="1"), ("running", "failed"))
    assert old["status"] == "running"
    new = deploy(api, app_project, APP_VERSION="2", MODE="never")

    failed = wait_for(api, new, ("running", "failed"))

    assert (failed["status"], failed["error_code"]) == ("failed", "health_check_failed")
    assert "not healthy within 3 s" in failed["error_message"]
    still = api.get(f"/v1/projects/{app_project['id']}/deployments/{old['id']}").json["data"]
    assert still["status"] == "running"
    assert fetch(old["url"]) == "version 1"
    project = api.get(f"/v1/projects/{app_project['id']}").json["data"]
    assert (project["status"], project["current_deployment_id"]) == ("running", old["id"])
    assert not engines.runtime().is_running(new["id"])
    assert len(api.get(f"/v1/projects/{app_project['id']}/releases").json["data"]) == 1


def test_an_app_that_exits_at_start_is_deploy_failed(api, app_project, pump):
    deployment = deploy(api, app_project, MODE="crash")

    failed = wait_for(api, deployment, ("running", "failed"))

    assert (failed["status"], failed["error_code"]) == ("failed", "deploy_failed")
    assert "code 1" in failed["error_message"]
    assert "missing DATABASE_URL" in failed["error_message"] + " ".join(messages(api, deployment))
    assert api.get(f"/v1/projects/{app_project['id']}").json["data"]["status"] == "failed"


def test_an_app_that_prints_a_secret_as_it_crashes_leaves_only_stars(api, app_project, pump):
    from chalicelib.store import deployments as store

    # Given a secret whose value the app prints as it exits at start
    secret = {"vars": {"DB_NAME": {"value": "DATABASE_URL", "secret": True}}}
    assert api.put(f"/v1/projects/{app_project['id']}/env", secret).status_code == 200
    deployment = deploy(api, app_project, MODE="crash")

    # When the deploy fails
    failed = wait_for(api, deployment, ("running", "failed"))

    # Then the error, the log and what the workflow kept of the cause hold stars instead
    assert failed["status"] == "failed"
    assert "missing ***" in failed["error_message"]
    kept = store.get(app_project["id"], deployment["id"])
    assert "DATABASE_URL" not in kept["step_cause"] + kept["error_message"]
    assert not any("DATABASE_URL" in message for message in messages(api, deployment))


def test_rollback_and_redeploy_reuse_artifacts_without_building(api, app_project, pump):
    first = wait_for(api, deploy(api, app_project, APP_VERSION="1"), ("running", "failed"))
    second = wait_for(api, deploy(api, app_project, APP_VERSION="2"), ("running", "failed"))
    assert fetch(second["url"]) == "version 2"
    stopped = api.get(f"/v1/projects/{app_project['id']}/deployments/{first['id']}").json
    assert stopped["data"]["status"] == "stopped"
    assert fetch(first["url"]) is None

    # Rollback: the first artifact and its env snapshot (APP_VERSION=1), no build
    response = api.post(
        f"/v1/projects/{app_project['id']}/rollback", {"deployment_id": first["id"]}
    )
    assert response.status_code == 200
    rollback = response.json["data"]
    assert rollback["status"] == "deploying"
    assert rollback["source"]["type"] == "rollback"
    assert rollback["image_tag"] == first["image_tag"]
    rolled = wait_for(api, rollback, ("running", "failed"))
    assert rolled["status"] == "running", rolled
    assert fetch(rolled["url"]) == "version 1"
    assert messages(api, rollback, "build") == []
    assert "Building (local)" not in messages(api, rollback)

    # Redeploy: the running artifact with the current env
    set_env(api, app_project, APP_VERSION="3")
    response = api.post(f"/v1/projects/{app_project['id']}/redeploy", {})
    assert response.status_code == 200
    redeployed = wait_for(api, response.json["data"], ("running", "failed"))
    assert fetch(redeployed["url"]) == "version 3"
    releases = api.get(f"/v1/projects/{app_project['id']}/releases").json["data"]
    assert [r["version"] for r in releases] == [4, 3, 2, 1]
    running = api.get(f"/v1/projects/{app_project['id']}/deployments?status=running").json["data"]
    assert [d["id"] for d in running] == [redeployed["id"]]


def test_redeploy_and_rollback_need_something_built(api, app_project, pump):
    redeploy = api.post(f"/v1/projects/{app_project['id']}/redeploy", {})
    assert (redeploy.status_code, redeploy.json["error"]["code"]) == (409, "invalid_state")
    crashed = wait_for(api, deploy(api, app_project, MODE="crash"), ("failed",))
    unbuilt = deploy_archive(api, app_project["id"], targz({"x": "y"}))
    api.post(f"/v1/projects/{app_project['id']}/deployments/{unbuilt['id']}/cancel")
    refused = api.post(
        f"/v1/projects/{app_project['id']}/rollback", {"deployment_id": unbuilt["id"]}
    )
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "invalid_state")
    missing = api.post(f"/v1/projects/{app_project['id']}/rollback", {"deployment_id": "dep_x"})
    assert missing.status_code == 404
    # A deployment that built but failed to start has an artifact: it can be redeployed
    assert crashed["error_code"] == "deploy_failed"
    assert api.post(f"/v1/projects/{app_project['id']}/redeploy", {}).status_code == 200


def test_cancel_while_deploying_stops_the_workflow_and_the_app(api, app_project, pump, monkeypatch):
    from chalicelib.aws.clients import client
    from chalicelib.aws.workflows import execution_arn
    from chalicelib.pipeline import engines

    api.patch(f"/v1/projects/{app_project['id']}", {"run": {"health_check_timeout_s": 120}})
    deployment = deploy(api, app_project, MODE="never")
    wait_for(api, deployment, ("deploying",))
    deadline = time.monotonic() + 30
    while not engines.runtime().is_running(deployment["id"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)

    canceled = api.post(f"/v1/projects/{app_project['id']}/deployments/{deployment['id']}/cancel")

    assert canceled.json["data"]["status"] == "canceled"
    assert not engines.runtime().is_running(deployment["id"])
    sfn = client("stepfunctions")
    deadline = time.monotonic() + 10
    while (
        sfn.describe_execution(executionArn=execution_arn(deployment["id"]))["status"] == "RUNNING"
    ):
        assert time.monotonic() < deadline, "the workflow was not stopped"
        time.sleep(0.1)
    assert api.get(f"/v1/projects/{app_project['id']}").json["data"]["status"] == "idle"


def test_a_deployment_past_the_deploy_timeout_is_swept(api, app_project, monkeypatch, client):
    import app as handlers
    from chalicelib.core.settings import get_settings
    from chalicelib.local.pump import Pump
    from chalicelib.pipeline import engines

    monkeypatch.setenv("SHIPYARD_DEPLOY_TIMEOUT_S", "3")
    monkeypatch.setenv("SHIPYARD_SCHEDULE_INTERVAL_S", "1")
    get_settings.cache_clear()
    api.patch(f"/v1/projects/{app_project['id']}", {"run": {"health_check_timeout_s": 120}})
    pump = Pump(handlers.app, handlers, workers=4)
    pump.start()
    try:
        deployment = deploy(api, app_project, MODE="never")
        failed = wait_for(api, deployment, ("failed", "running"))
        assert (failed["status"], failed["error_code"]) == ("failed", "timed_out")
        assert "deploying for more than 3 s" in failed["error_message"]
        # The sweeper stops the app right after recording the failure.
        deadline = time.monotonic() + 15
        while engines.runtime().is_running(deployment["id"]):
            assert time.monotonic() < deadline, "the timed-out app was not stopped"
            time.sleep(0.1)
    finally:
        pump.stop()
        engines.shutdown()


def test_a_worker_killed_mid_step_times_out_and_the_step_runs_again(
    api, app_project, monkeypatch, client
):
    import json

    import app as handlers
    from chalicelib.aws.clients import client as aws_client
    from chalicelib.aws.queues import url
    from chalicelib.core.settings import get_settings
    from chalicelib.local.pump import Pump
    from chalicelib.pipeline import engines, workflow

    monkeypatch.setenv("SHIPYARD_WORKFLOW_TASK_TIMEOUT_S", "3")
    get_settings.cache_clear()
    builds_only = Pump(handlers.app, handlers, workers=2, only=("on_builds_message",))
    builds_only.start()
    everything = None
    try:
        deployment = deploy(api, app_project, APP_VERSION="1")
        # The worker that takes the Deploy task dies before answering: its message is
        # neither answered nor deleted.
        sqs = aws_client("sqs")
        deadline = time.monotonic() + 60
        taken = []
        while not taken:
            assert time.monotonic() < deadline, "no Deploy task arrived"
            taken = sqs.receive_message(
                QueueUrl=url("deploy-tasks"), WaitTimeSeconds=1, VisibilityTimeout=300
            ).get("Messages", [])
        lost = json.loads(taken[0]["Body"])
        assert lost["step"] == "deploy"

        everything = Pump(handlers.app, handlers, workers=4)
        everything.start()
        running = wait_for(api, deployment, ("running", "failed"))

        assert running["status"] == "running", running
        assert fetch(running["url"]) == "version 1"
        # The dead worker's message, answered late, finds the workflow moved on: done.
        workflow.handle(lost)
        assert (
            api.get(f"/v1/projects/{app_project['id']}/deployments/{deployment['id']}").json[
                "data"
            ]["status"]
            == "running"
        )
    finally:
        builds_only.stop()
        if everything is not None:
            everything.stop()
        engines.shutdown()


def test_deleting_a_project_stops_its_app_and_removes_its_data(api, app_project, pump):
    from chalicelib.store import deployments as store

    running = wait_for(api, deploy(api, app_project, APP_VERSION="1"), ("running", "failed"))
    assert fetch(running["url"]) == "version 1"

    assert api.delete(f"/v1/projects/{app_project['id']}").status_code == 204

    assert fetch(running["url"]) is None
    deadline = time.monotonic() + 20
    while store.get(app_project["id"], running["id"]) is not None:
        assert time.monotonic() < deadline, "the project's deployments were not removed"
        time.sleep(0.2)
    assert api.get(f"/v1/projects/{app_project['id']}/deployments").status_code == 404
