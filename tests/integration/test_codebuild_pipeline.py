"""The pipeline on its AWS path: the builds consumer checks the archive here and starts a
CodeBuild build; EventBridge "CodeBuild Build State Change" events move the deployment.
Events are fed to the app's own handler through chalice's test client, in the orders
EventBridge may deliver them (moto's CodeBuild statuses can't be trusted: design.md)."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from tests.codebuild_support import (
    REPOSITORY,
    consume_builds_queue,
    current,
    feed,
    state_change,
    use_aws_stage,
)
from tests.integration.conftest import deploy_archive, log_lines
from tests.pipeline_support import targz


@pytest.fixture
def on_aws(monkeypatch, aws):
    """The settings of a deployed stage: builds go to CodeBuild."""
    use_aws_stage(monkeypatch)


def started_build(api, client, project, archive=None):
    from chalicelib.store import deployments as store

    deployment = deploy_archive(api, project["id"], archive or targz({"index.html": "v1"}))
    consume_builds_queue(client)
    item = store.get(project["id"], deployment["id"])
    return deployment, item


def test_the_consumer_checks_the_archive_then_starts_codebuild(
    on_aws, api, client, project, codebuild_calls
):
    deployment, item = started_build(api, client, project)

    assert item["status"] == "building"
    assert item["build_method"] == "codebuild"
    assert item["framework"] == "static"
    assert item["build_id"].startswith("shipyard-build:")
    [call] = codebuild_calls["StartBuild"]
    assert call["sourceLocationOverride"].endswith(item["source_key"])
    assert call["idempotencyToken"] == deployment["id"]
    variables = {v["name"]: v["value"] for v in call["environmentVariablesOverride"]}
    assert variables["SHIPYARD_DEPLOYMENT_ID"] == deployment["id"]
    # The same build packs the artifact and builds and pushes the app's image
    image = f"{REPOSITORY}:{deployment['id']}"
    assert item["image_tag"] == image
    buildspec = json.loads(call["buildspecOverride"])
    image_commands = buildspec["phases"]["post_build"]["commands"]
    assert any(f'docker push "{image}"' in command for command in image_commands)
    assert buildspec["artifacts"]["files"] == ["artifact.tar.gz"]
    assert any(
        line["message"] == f"CodeBuild build {item['build_id']} started"
        for line in log_lines(api, deployment)
    )


def test_a_hostile_archive_never_reaches_codebuild(on_aws, api, client, project, codebuild_calls):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("/etc/passwd")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))

    _, item = started_build(api, client, project, buffer.getvalue())

    assert (item["status"], item["error_code"]) == ("failed", "invalid_archive")
    assert "absolute_path" in item["error_message"]
    assert "StartBuild" not in codebuild_calls


def test_succeeded_then_late_events_are_ignored(on_aws, api, client, project):
    from chalicelib.aws.clients import client as aws_client
    from chalicelib.aws.workflows import execution_arn

    deployment, item = started_build(api, client, project)
    build_id = item["build_id"]

    feed(client, state_change("IN_PROGRESS", build_id, deployment["id"]))
    assert current(api, deployment)["status"] == "building"
    feed(client, state_change("SUCCEEDED", build_id, deployment["id"]))
    built = current(api, deployment)
    assert built["status"] == "built"
    assert built["image_tag"] == f"{REPOSITORY}:{deployment['id']}"
    aws_client("stepfunctions").describe_execution(executionArn=execution_arn(deployment["id"]))

    # Late and repeated events change nothing
    for status in ("IN_PROGRESS", "FAILED", "SUCCEEDED"):
        feed(client, state_change(status, build_id, deployment["id"]))
    assert current(api, deployment)["status"] == "built"


def test_failed_then_a_late_in_progress_stays_failed(on_aws, api, client, project):
    deployment, item = started_build(api, client, project)
    phases = [
        {"phase-type": "BUILD", "phase-status": "FAILED", "phase-context": ["npm ERR! missing"]}
    ]

    feed(client, state_change("FAILED", item["build_id"], deployment["id"], phases))
    feed(client, state_change("IN_PROGRESS", item["build_id"], deployment["id"]))
    feed(client, state_change("SUCCEEDED", item["build_id"], deployment["id"]))

    failed = current(api, deployment)
    assert (failed["status"], failed["error_code"]) == ("failed", "build_failed")
    assert "npm ERR! missing" in failed["error_message"]
    statuses = [
        line["message"] for line in log_lines(api, deployment) if "Failed" in line["message"]
    ]
    assert len(statuses) == 1


def test_an_event_of_another_build_is_ignored(on_aws, api, client, project):
    deployment, item = started_build(api, client, project)
    feed(client, state_change("FAILED", "shipyard-build:someone-else", deployment["id"]))
    feed(client, state_change("FAILED", item["build_id"], "dep_unknown"))
    assert current(api, deployment)["status"] == "building"


def test_cancel_stops_the_codebuild_build(on_aws, api, client, project, codebuild_calls):
    deployment, item = started_build(api, client, project)
    path = f"/v1/projects/{project['id']}/deployments/{deployment['id']}/cancel"

    assert api.post(path).json["data"]["status"] == "canceled"

    assert [call["id"] for call in codebuild_calls["StopBuild"]] == [item["build_id"]]
    feed(client, state_change("STOPPED", item["build_id"], deployment["id"]))
    assert current(api, deployment)["status"] == "canceled"


def test_a_message_delivered_twice_starts_one_codebuild_build(
    on_aws, api, client, project, codebuild_calls
):
    from chalicelib.aws import queues

    deployment = deploy_archive(api, project["id"], targz({"index.html": "v1"}))
    queues.send(
        "builds", {"kind": "build", "project_id": project["id"], "deployment_id": deployment["id"]}
    )
    consume_builds_queue(client)
    assert len(codebuild_calls["StartBuild"]) == 1
    assert json.loads(json.dumps(current(api, deployment)))["status"] == "building"
