"""The AWS build path as the tests drive it: the builds queue delivered to the app's
handler as Lambda would, and EventBridge "CodeBuild Build State Change" events as CodeBuild
sends them, fed to the app's own handler (moto's CodeBuild runs nothing)."""

from __future__ import annotations

ACCOUNT = "123456789012"
REPOSITORY = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/shipyard-apps"


def use_aws_stage(monkeypatch) -> None:
    """The settings of a deployed stage: builds go to CodeBuild."""
    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("SHIPYARD_STAGE", "prod")
    monkeypatch.setenv("SHIPYARD_IMAGE_REPOSITORY", REPOSITORY)
    get_settings.cache_clear()


def consume_builds_queue(client):
    """Deliver what the builds queue holds to the app's handler, as Lambda would."""
    from chalicelib.aws.clients import client as aws_client
    from chalicelib.aws.queues import url

    sqs = aws_client("sqs")
    while True:
        found = sqs.receive_message(QueueUrl=url("builds"), MaxNumberOfMessages=10)
        messages = found.get("Messages", [])
        if not messages:
            return
        for message in messages:
            event = client.events.generate_sqs_event(
                queue_name="shipyard-builds", message_bodies=[message["Body"]]
            )
            client.lambda_.invoke("on_builds_message", event)
            sqs.delete_message(QueueUrl=url("builds"), ReceiptHandle=message["ReceiptHandle"])


def state_change(
    status: str, build_id: str, deployment_id: str | None = None, phases=None, variables=None
) -> dict:
    """The EventBridge event of a build's state change, as CodeBuild sends it (shape from
    the CodeBuild docs). `variables`: as the build was started with (CodeBuild reports
    them as given: a PARAMETER_STORE one by its parameter's name); by default only the
    SHIPYARD_DEPLOYMENT_ID of `deployment_id`, or none."""
    arn = f"arn:aws:codebuild:us-east-1:{ACCOUNT}:build/{build_id}"
    if variables is None and deployment_id is not None:
        variables = [
            {"name": "SHIPYARD_DEPLOYMENT_ID", "value": deployment_id, "type": "PLAINTEXT"}
        ]
    return {
        "version": "0",
        "id": "c030038d-8c4d-6141-9545-00ff7b7153ea",
        "detail-type": "CodeBuild Build State Change",
        "source": "aws.codebuild",
        "account": ACCOUNT,
        "time": "2026-02-25T14:30:00Z",
        "region": "us-east-1",
        "resources": [arn],
        "detail": {
            "build-status": status,
            "project-name": build_id.split(":")[0],
            "build-id": arn,
            "additional-information": {
                "environment": {
                    "image": "aws/codebuild/standard:7.0",
                    "privileged-mode": False,
                    "compute-type": "BUILD_GENERAL1_SMALL",
                    "type": "LINUX_CONTAINER",
                    "environment-variables": variables or [],
                },
                "timeout-in-minutes": 15,
                "build-complete": status != "IN_PROGRESS",
                "initiator": "shipyard",
                "phases": phases or [],
            },
            "current-phase": "COMPLETED" if status != "IN_PROGRESS" else "BUILD",
            "current-phase-context": "[]",
            "version": "1",
        },
    }


def current(api, deployment):
    path = f"/v1/projects/{deployment['project_id']}/deployments/{deployment['id']}"
    return api.get(path).json["data"]


def feed(client, event):
    """An EventBridge event to the app's CodeBuild state-change handler."""
    client.lambda_.invoke("on_codebuild_state_change", event)
