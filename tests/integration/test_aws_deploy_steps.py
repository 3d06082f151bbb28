"""The deploy workflow's steps on the AWS path, tested by what they leave in moto's Lambda:
a deployment becomes a published version with its own alias and URL, promotion moves the
project's `live` alias (the project's URL), and the replaced deployment's alias goes;
`runtime` stays null and the access log empty, as docs/runtimes.md says of AWS."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_deployment_status import new_deployment

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture
def on_aws(monkeypatch, aws):
    from chalicelib.aws.clients import client
    from chalicelib.core.settings import get_settings

    role = client("iam").create_role(
        RoleName="shipyard-app-runtime", AssumeRolePolicyDocument=json.dumps(TRUST)
    )["Role"]["Arn"]
    monkeypatch.setenv("SHIPYARD_STAGE", "prod")
    monkeypatch.setenv("SHIPYARD_APP_ROLE_ARN", role)
    get_settings.cache_clear()


@pytest.fixture
def project_item(api, project):
    from chalicelib.store import projects as project_store

    return project_store.get(project["workspace_id"], project["id"])


def built_deployment(project_item, tag):
    from chalicelib.deployments import service as deployments

    plan = {
        "runtime": "python",
        "framework": None,
        "root_directory": None,
        "install_command": None,
        "build_command": None,
        "start_command": "python app.py",
        "output_directory": None,
        "port": None,
    }
    item = new_deployment(project_item)
    item = deployments.move(item, "building", "Building")
    fields = {
        "artifact_key": "artifacts/x.tar.gz",
        "plan": plan,
        "image_tag": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/shipyard-apps:{tag}",
    }
    return deployments.move(item, "built", "Built", fields)


def test_deploy_and_promote_publish_versions_and_move_the_live_alias(on_aws, api, project_item):
    from chalicelib.aws.clients import client
    from chalicelib.pipeline import workflow
    from chalicelib.store import deployments as store

    function = f"shipyard-app-{project_item['id']}"
    first = built_deployment(project_item, "v1")

    output = workflow.deploy(first, {})

    first = store.get(first["project_id"], first["id"])
    assert first["status"] == "deploying"
    assert output == {"url": first["url"]}
    lam = client("lambda")
    alias = lam.get_alias(FunctionName=function, Name=first["id"])
    config = lam.get_function_configuration(FunctionName=function, Qualifier=first["id"])
    assert config["Environment"]["Variables"]["SHIPYARD_DEPLOYMENT_ID"] == first["id"]
    assert alias["FunctionVersion"] == config["Version"]

    assert workflow.promote(first, {}) == {"promoted": True}
    live = lam.get_alias(FunctionName=function, Name="live")
    assert live["FunctionVersion"] == alias["FunctionVersion"]
    project = api.get(f"/v1/projects/{project_item['id']}").json["data"]
    assert project["status"] == "running"
    assert project["url"] == lam.get_function_url_config(FunctionName=function)["FunctionUrl"]
    # Lambda restarts execution environments itself: nothing supervises them, so `runtime`
    # stays null; function URLs keep no access log, so the project's is empty.
    path = f"/v1/projects/{project_item['id']}"
    running = api.get(f"{path}/deployments/{first['id']}").json["data"]
    assert running["status"] == "running" and running["runtime"] is None
    access = api.get(f"{path}/access-logs").json
    assert access["data"] == [] and access["pagination"]["has_more"] is False

    second = built_deployment(project_item, "v2")
    workflow.deploy(second, {})
    workflow.promote(store.get(second["project_id"], second["id"]), {})

    assert store.get(first["project_id"], first["id"])["status"] == "stopped"
    aliases = {a["Name"] for a in lam.list_aliases(FunctionName=function)["Aliases"]}
    assert aliases == {"live", second["id"]}
    assert (
        lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"]
        != (alias["FunctionVersion"])
    )


def test_a_failed_deploy_on_lambda_is_deploy_failed(on_aws, api, project_item, monkeypatch):
    from chalicelib.pipeline import workflow

    monkeypatch.setenv("MOTO_LAMBDA_STUB_ECR", "false")
    item = built_deployment(project_item, "never-pushed")

    with pytest.raises(workflow.StepFailed) as failure:
        workflow.deploy(item, {})

    assert failure.value.error == workflow.DEPLOY_FAILED
    assert "Lambda refused the deployment" in failure.value.cause
