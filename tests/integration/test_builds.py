"""The builds queue, its consumer and the local build engine, on moto with the local
pump delivering the queue's messages to the app's own handler. The deploy workflow is
started but does not execute here (tests/integration/test_workflow.py runs it)."""

from __future__ import annotations

import io
import json
import tarfile
import time

from tests.integration.conftest import deploy_archive, log_lines, wait_for
from tests.pipeline_support import targz

STATIC = targz({"index.html": "<h1>v1</h1>"})


def set_build(api, project, **build):
    assert api.patch(f"/v1/projects/{project['id']}", {"build": build}).status_code == 200


def shell_app(command: str) -> bytes:
    """A static site whose build command is `command` (runtime static, built by a shell)."""
    return targz({"index.html": "<h1>app</h1>", "build.sh": command})


def test_a_static_site_builds_and_starts_its_workflow(api, project, pump):
    from chalicelib.aws.clients import client
    from chalicelib.aws.workflows import execution_arn, state_machine_arn

    deployment = deploy_archive(api, project["id"], STATIC)
    built = wait_for(api, deployment, ("built", "failed"))

    assert built["status"] == "built", built
    assert built["build_method"] == "local"
    assert built["framework"] == "static"
    assert built["image_tag"].startswith(f"artifacts/{project['id']}/{deployment['id']}/")
    assert built["started_at"] is not None
    messages = [line["message"] for line in log_lines(api, deployment)]
    assert messages[:2] == [
        "Deployment #1 created (from an archive sent to /deploy)",
        "Building (local)",
    ]
    assert "Built" in messages
    executions = client("stepfunctions").list_executions(stateMachineArn=state_machine_arn())
    deadline = time.monotonic() + 10
    while not executions["executions"]:
        assert time.monotonic() < deadline, "the deploy workflow was not started"
        time.sleep(0.1)
        executions = client("stepfunctions").list_executions(stateMachineArn=state_machine_arn())
    assert [e["name"] for e in executions["executions"]] == [deployment["id"]]
    execution = client("stepfunctions").describe_execution(
        executionArn=execution_arn(deployment["id"])
    )
    assert json.loads(execution["input"])["deployment_id"] == deployment["id"]


def test_a_failing_build_is_build_failed_with_its_own_output_in_the_log(api, project, pump):
    set_build(
        api, project, build_command="echo 'compiling...'; echo 'boom: syntax error' >&2; exit 3"
    )
    deployment = deploy_archive(api, project["id"], STATIC)

    failed = wait_for(api, deployment, ("built", "failed"))

    assert (failed["status"], failed["error_code"]) == ("failed", "build_failed")
    assert "exited with code 3" in failed["error_message"]
    lines = log_lines(api, deployment)
    build_output = [line["message"] for line in lines if line["phase"] == "build"]
    assert build_output == ["compiling...", "boom: syntax error"]
    assert lines[-1]["phase"] == "system"
    assert lines[-1]["message"].startswith("Failed (build_failed)")
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    project_now = api.get(f"/v1/projects/{project['id']}").json["data"]
    assert project_now["status"] == "failed"


def test_a_hostile_archive_is_invalid_archive_naming_the_rule(api, project, pump):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../etc/evil")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    deployment = deploy_archive(api, project["id"], buffer.getvalue())

    failed = wait_for(api, deployment, ("built", "failed"))

    assert failed["error_code"] == "invalid_archive"
    assert "parent_traversal" in failed["error_message"]
    assert any("parent_traversal" in line["message"] for line in log_lines(api, deployment))


def test_a_duplicate_message_starts_one_build(api, project, pump):
    from chalicelib.aws import queues

    set_build(api, project, build_command="sleep 1; echo built once")
    deployment = deploy_archive(api, project["id"], STATIC)
    message = {"kind": "build", "project_id": project["id"], "deployment_id": deployment["id"]}
    queues.send("builds", message)
    queues.send("builds", message)

    built = wait_for(api, deployment, ("built", "failed"))

    assert built["status"] == "built"
    messages = [line["message"] for line in log_lines(api, deployment)]
    assert messages.count("Building (local)") == 1
    assert messages.count("built once") == 1


def test_builds_over_the_tier_limit_wait_and_start_when_a_slot_frees(api, project, pump):
    # Given the free tier: one concurrent build
    set_build(api, project, build_command="sleep 1.5")
    first = deploy_archive(api, project["id"], STATIC)
    wait_for(api, first, ("building",))
    second = deploy_archive(api, project["id"], STATIC)

    # Then the second waits while the first builds
    seen = set()
    path = f"/v1/projects/{project['id']}/deployments"
    while True:
        statuses = {d["id"]: d["status"] for d in api.get(path).json["data"]}
        seen.add((statuses[first["id"]], statuses[second["id"]]))
        if statuses[second["id"]] != "pending":
            break
        time.sleep(0.1)
    assert ("building", "pending") in seen
    assert ("building", "building") not in seen
    assert wait_for(api, second, ("built", "failed"))["status"] == "built"
    assert wait_for(api, first, ("built", "failed"))["status"] == "built"
    waiting = [line["message"] for line in log_lines(api, second)]
    assert any(m.startswith("Waiting for a build slot") for m in waiting)
    from chalicelib.store import build_slots

    assert build_slots.holders(project["workspace_id"]) == set()


def test_cancel_during_a_long_build_stops_it(api, project, pump):
    from chalicelib.pipeline import engines

    set_build(api, project, build_command="echo started; sleep 60")
    deployment = deploy_archive(api, project["id"], STATIC)
    wait_for(api, deployment, ("building",))
    deadline = time.monotonic() + 30
    while "started" not in [line["message"] for line in log_lines(api, deployment)]:
        assert time.monotonic() < deadline
        time.sleep(0.1)

    started = time.monotonic()
    canceled = api.post(f"/v1/projects/{project['id']}/deployments/{deployment['id']}/cancel")

    assert canceled.status_code == 200
    assert canceled.json["data"]["status"] == "canceled"
    while engines.is_building(deployment["id"]):
        assert time.monotonic() - started < 10, "the build was not stopped"
        time.sleep(0.1)
    final = api.get(f"/v1/projects/{project['id']}/deployments/{deployment['id']}").json["data"]
    assert (final["status"], final["error_code"]) == ("canceled", None)
    again = api.post(f"/v1/projects/{project['id']}/deployments/{deployment['id']}/cancel")
    assert again.status_code == 409
    assert again.json["error"]["code"] == "invalid_state"


def test_a_build_past_the_build_timeout_is_timed_out(api, project, pump, monkeypatch):
    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("SHIPYARD_BUILD_TIMEOUT_S", "2")
    get_settings.cache_clear()
    set_build(api, project, build_command="sleep 60")
    deployment = deploy_archive(api, project["id"], STATIC)

    failed = wait_for(api, deployment, ("failed",), timeout_s=30)

    assert failed["error_code"] == "timed_out"


def test_retry_builds_the_same_archive_again(api, project, pump):
    set_build(api, project, build_command="exit 1")
    deployment = deploy_archive(api, project["id"], STATIC)
    wait_for(api, deployment, ("failed",))
    set_build(api, project, build_command="echo fixed")

    retried = api.post(f"/v1/projects/{project['id']}/deployments/{deployment['id']}/retry")

    assert retried.status_code == 202
    again = retried.json["data"]
    assert again["retry_of"] == deployment["id"]
    assert again["source"]["type"] == "retry"
    assert again["source"]["deployment_id"] == deployment["id"]
    assert again["number"] == 2
    assert wait_for(api, again, ("built", "failed"))["status"] == "built"
    refused = api.post(f"/v1/projects/{project['id']}/deployments/{again['id']}/retry")
    assert refused.status_code == 409


def test_deleting_a_project_during_its_build_stops_the_build(api, project, pump):
    from chalicelib.pipeline import engines
    from chalicelib.store import build_slots
    from chalicelib.store import deployments as store

    set_build(api, project, build_command="echo started; sleep 60")
    deployment = deploy_archive(api, project["id"], STATIC)
    wait_for(api, deployment, ("building",))

    assert api.delete(f"/v1/projects/{project['id']}").status_code == 204

    deadline = time.monotonic() + 15
    while engines.is_building(deployment["id"]) or store.get(project["id"], deployment["id"]):
        assert time.monotonic() < deadline, "the build or the deployment outlived the project"
        time.sleep(0.1)
    assert build_slots.holders(project["workspace_id"]) == set()
