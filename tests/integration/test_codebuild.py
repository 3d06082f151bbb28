"""CodeBuildBuilder, tested by its calls (captured on the real client as they go to moto)
and by the EventBridge events it is fed. moto's CodeBuild reports every build SUCCEEDED
on first read, so no status here comes from moto."""

from __future__ import annotations

import json

import pytest

from chalicelib.aws.clients import client
from chalicelib.builders.codebuild import CodeBuildBuilder, parse_state_change, project_name
from chalicelib.buildplan.plan import make_plan
from chalicelib.ports import BuildJob
from tests.codebuild_support import state_change


def vite_plan():
    package = {"scripts": {"build": "vite build"}, "devDependencies": {"vite": "5"}}
    return make_plan({"package.json": json.dumps(package).encode()}, "auto", {}, {})


def make_job(**overrides) -> BuildJob:
    fields = {
        "deployment_id": "dep_7",
        "project_id": "prj_1",
        "workspace_id": "ws_1",
        "source_key": "uploads/prj_1/upl_9.tar.gz",
        "project_runtime": "auto",
        "build": {},
        "run": {},
        "env": {"API_URL": "https://api.example.com", "CODEBUILD_SRC_DIR": "nope"},
        "timeout_s": 900,
    }
    fields.update(overrides)
    return BuildJob(**fields)


def test_start_build_passes_source_buildspec_env_and_artifact_location(codebuild_calls):
    # Given a plan and a job
    plan = vite_plan()

    # When the build is started
    build_id = CodeBuildBuilder().start(make_job(), plan)

    # Then one StartBuild went out with every per-deployment override
    (params,) = codebuild_calls["StartBuild"]
    assert params["projectName"] == project_name() == "shipyard-build"
    assert params["sourceTypeOverride"] == "S3"
    assert params["sourceLocationOverride"] == "shipyard-artifacts/uploads/prj_1/upl_9.tar.gz"
    assert json.loads(params["buildspecOverride"]) == plan.buildspec()
    variables = {v["name"]: v["value"] for v in params["environmentVariablesOverride"]}
    assert variables == {
        "API_URL": "https://api.example.com",
        "SHIPYARD_DEPLOYMENT_ID": "dep_7",
        "SHIPYARD_SOURCE_ARCHIVE": "upl_9.tar.gz",
    }
    assert {v["type"] for v in params["environmentVariablesOverride"]} == {"PLAINTEXT"}
    # packaging NONE stores the artifact file at <path>/<name>/artifact.tar.gz: the key
    assert params["artifactsOverride"] == {
        "type": "S3",
        "location": "shipyard-artifacts",
        "path": "artifacts/prj_1",
        "name": "dep_7",
        "namespaceType": "NONE",
        "packaging": "NONE",
    }
    assert params["timeoutInMinutesOverride"] == 15
    assert params["idempotencyToken"] == "dep_7"

    # And moto recorded the build under the project, with the artifact bucket
    codebuild = client("codebuild")
    assert codebuild.list_builds_for_project(projectName="shipyard-build")["ids"] == [build_id]
    (recorded,) = codebuild.batch_get_builds(ids=[build_id])["builds"]
    assert recorded["artifacts"]["location"] == "shipyard-artifacts"


@pytest.mark.parametrize(("timeout_s", "minutes"), [(60, 5), (901, 16), (10**6, 2160)])
def test_the_timeout_is_in_codebuilds_range(codebuild_calls, timeout_s, minutes):
    CodeBuildBuilder().start(make_job(timeout_s=timeout_s), vite_plan())
    assert codebuild_calls["StartBuild"][0]["timeoutInMinutesOverride"] == minutes


def test_stop_calls_stop_build_and_ignores_unknown_builds(codebuild_calls):
    builder = CodeBuildBuilder()
    build_id = builder.start(make_job(), vite_plan())

    builder.stop(build_id)
    builder.stop("shipyard-build:00000000-0000-0000-0000-000000000000")

    assert [c["id"] for c in codebuild_calls["StopBuild"]] == [
        build_id,
        "shipyard-build:00000000-0000-0000-0000-000000000000",
    ]


DEPLOYMENT_VARIABLES = [
    {"name": "API_URL", "value": "https://api.example.com", "type": "PLAINTEXT"},
    {"name": "SHIPYARD_DEPLOYMENT_ID", "value": "dep_7", "type": "PLAINTEXT"},
]


def test_events_of_a_started_build_map_back_to_its_deployment(codebuild_calls):
    # Given a started build
    build_id = CodeBuildBuilder().start(make_job(), vite_plan())

    # When its state-change events arrive
    progress = parse_state_change(
        state_change("IN_PROGRESS", build_id, variables=DEPLOYMENT_VARIABLES)
    )
    done = parse_state_change(state_change("SUCCEEDED", build_id, variables=DEPLOYMENT_VARIABLES))

    # Then they name the build start returned, and its deployment
    assert (progress.build_id, progress.deployment_id, progress.status) == (
        build_id,
        "dep_7",
        "building",
    )
    assert (done.status, done.error_message, done.error_code) == ("built", None, None)


def test_secret_values_reach_codebuild_from_parameter_store_and_are_deleted_at_the_end(
    codebuild_calls,
):
    import app
    from chalicelib.aws.clients import client

    # Given a job with a secret, an empty secret and a plain variable
    env = {"API_URL": "https://api.example.com", "API_TOKEN": "s3cr3t-value", "EMPTY": ""}
    job = make_job(env=env, secret_keys=("API_TOKEN", "EMPTY"))

    # When its build starts
    build_id = CodeBuildBuilder().start(job, vite_plan())

    # Then the secret went as a PARAMETER_STORE variable naming a SecureString, never as text
    (params,) = codebuild_calls["StartBuild"]
    variables = {v["name"]: v for v in params["environmentVariablesOverride"]}
    assert variables["API_TOKEN"] == {
        "name": "API_TOKEN",
        "value": "/shipyard/builds/dep_7/API_TOKEN",
        "type": "PARAMETER_STORE",
    }
    assert variables["API_URL"]["type"] == variables["EMPTY"]["type"] == "PLAINTEXT"
    assert "s3cr3t-value" not in json.dumps(params)
    stored = client("ssm").get_parameter(
        Name="/shipyard/builds/dep_7/API_TOKEN", WithDecryption=True
    )
    assert stored["Parameter"]["Type"] == "SecureString"
    assert stored["Parameter"]["Value"] == "s3cr3t-value"

    # and once CodeBuild reports the build's end, the parameter is gone
    app.on_codebuild_state_change(
        state_change("SUCCEEDED", build_id, variables=DEPLOYMENT_VARIABLES), None
    )
    left = client("ssm").get_parameters_by_path(Path="/shipyard/builds/dep_7")["Parameters"]
    assert left == []


def test_a_failed_build_says_which_phase_and_why():
    phases = [
        {"phase-type": "SUBMITTED", "phase-status": "SUCCEEDED", "phase-context": []},
        {"phase-type": "INSTALL", "phase-status": "SUCCEEDED", "phase-context": [": "]},
        {
            "phase-type": "BUILD",
            "phase-status": "FAILED",
            "phase-context": [
                "COMMAND_EXECUTION_ERROR: Error while executing command: cd "
                '"$CODEBUILD_SRC_DIR" && npm run build. Reason: exit status 1'
            ],
        },
        {"phase-type": "FINALIZING", "phase-status": "SUCCEEDED", "phase-context": []},
    ]
    change = parse_state_change(
        state_change("FAILED", "shipyard-build:abc", phases=phases, variables=DEPLOYMENT_VARIABLES)
    )
    assert change.status == "failed"
    assert change.error_code == "build_failed"
    assert change.error_message.startswith("the build failed in the build phase: ")
    assert "npm run build. Reason: exit status 1" in change.error_message


@pytest.mark.parametrize(
    ("status", "error_code", "words"),
    [
        ("TIMED_OUT", "timed_out", "timeout"),
        ("FAULT", "internal_error", "CodeBuild failed"),
        ("STOPPED", None, "stopped"),
    ],
)
def test_other_ends_of_a_build(status, error_code, words):
    change = parse_state_change(
        state_change(status, "shipyard-build:abc", variables=DEPLOYMENT_VARIABLES)
    )
    assert (change.status, change.error_code, change.deployment_id) == (
        "failed",
        error_code,
        "dep_7",
    )
    assert words in change.error_message


def test_a_build_shipyard_did_not_start_has_no_deployment():
    change = parse_state_change(state_change("SUCCEEDED", "someone-else:xyz"))
    assert (change.build_id, change.deployment_id) == ("someone-else:xyz", None)


@pytest.mark.parametrize(
    "event",
    [
        {**state_change("SUCCEEDED", "p:1"), "detail-type": "CodeBuild Build Phase Change"},
        state_change("QUEUED_SOMEHOW", "p:1"),
        {},
    ],
)
def test_other_events_are_refused(event):
    with pytest.raises(ValueError):
        parse_state_change(event)
