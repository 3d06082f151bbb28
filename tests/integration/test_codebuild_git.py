"""A git deployment on the AWS build path: a first CodeBuild build clones the commit into
the bucket, and its success goes on exactly as an upload (archive checks, the build plan
from its files, the normal CodeBuild build). moto's CodeBuild records start_build and runs
nothing, so the clone build's buildspec is run here by bash, as CodeBuild would run it
(its PARAMETER_STORE variables read from moto's SSM, its artifacts put where the
artifact override says), and its state-change events are fed to the app's own handler."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.codebuild_support import (
    consume_builds_queue,
    current,
    feed,
    state_change,
    use_aws_stage,
)
from tests.git_support import make_repo
from tests.integration.conftest import log_lines

TOKEN = "ghp_s3cr3tT0kenN0bodyMayRead"


@pytest.fixture
def repo(tmp_path):
    return make_repo(
        tmp_path / "repo", {"index.html": "<h1>v1</h1>", "docs/a.txt": "a"}, "Ship the site"
    )


def git_project(api, repository: str) -> dict:
    body = {"name": "Web", "git": {"repository": repository, "branch": "main"}}
    made = api.post("/v1/projects", body)
    assert made.status_code == 201, made.json
    return made.json["data"]


def deploy_sha(api, project: dict, sha: str) -> dict:
    made = api.post(f"/v1/projects/{project['id']}/deployments", {"git": {"ref": sha}})
    assert made.status_code == 202, made.json
    return made.json["data"]


def run_buildspec(call: dict, workdir: Path, allow_file: bool = False) -> tuple[dict, str]:
    """Run a clone build as CodeBuild would: each command of its build phase with bash in
    one directory, with the buildspec's variables and the overrides (PARAMETER_STORE ones
    read from SSM), stopping at the first that fails. Returns the phase as the event
    reports it and what the build printed (what CodeBuild would log)."""
    from chalicelib.aws.clients import client

    spec = json.loads(call["buildspecOverride"])
    env = {"PATH": os.environ["PATH"], "HOME": str(workdir), **spec["env"]["variables"]}
    for variable in call["environmentVariablesOverride"]:
        value = variable["value"]
        if variable["type"] == "PARAMETER_STORE":
            value = client("ssm").get_parameter(Name=value, WithDecryption=True)["Parameter"][
                "Value"
            ]
        env[variable["name"]] = value
    if allow_file:
        # The tests' repositories are file://; the buildspec lets git speak https only.
        env["GIT_ALLOW_PROTOCOL"] = "file:https"
    printed = ""
    commands = spec["phases"]["build"]["commands"]
    assert commands[0] == "set -o pipefail"
    for command in commands[1:]:
        done = subprocess.run(
            [spec["env"]["shell"], "-c", f"set -o pipefail\n{command}"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        printed += done.stdout + done.stderr
        if done.returncode != 0:
            context = (
                "COMMAND_EXECUTION_ERROR: Error while executing command: "
                f"{command}. Reason: exit status {done.returncode}"
            )
            phase = {"phase-type": "BUILD", "phase-status": "FAILED", "phase-context": [context]}
            return phase, printed
    return {"phase-type": "BUILD", "phase-status": "SUCCEEDED", "phase-context": [": "]}, printed


def upload_artifacts(call: dict, workdir: Path) -> None:
    """CodeBuild's artifact upload: each file of the buildspec's artifacts at
    <path>/<name>/<file> of the override's bucket (packaging NONE)."""
    from chalicelib.aws.clients import client

    spec = json.loads(call["buildspecOverride"])
    target = call["artifactsOverride"]
    for name in spec["artifacts"]["files"]:
        key = f"{target['path']}/{target['name']}/{name}"
        client("s3").put_object(
            Bucket=target["location"], Key=key, Body=(workdir / name).read_bytes()
        )


def event_of(call: dict, status: str, build_id: str, phases=None) -> dict:
    variables = [{**v} for v in call["environmentVariablesOverride"]]
    deployment_id = next(v["value"] for v in variables if v["name"] == "SHIPYARD_DEPLOYMENT_ID")
    return state_change(status, build_id, deployment_id, phases, variables)


def clone_parameters(deployment_id: str) -> list[str]:
    from chalicelib.aws.clients import client

    found = client("ssm").get_parameters_by_path(Path=f"/shipyard/builds/{deployment_id}-clone")
    return [p["Name"] for p in found["Parameters"]]


def test_a_git_deployment_clones_in_codebuild_then_builds_as_an_upload(
    api, client, aws, repo, tmp_path, monkeypatch, codebuild_calls
):
    from chalicelib.aws import queues
    from tests.git_support import git

    project = git_project(api, f"file://{repo}")
    sha = git(repo, "rev-parse", "HEAD")
    deployment = deploy_sha(api, project, sha)
    use_aws_stage(monkeypatch)

    # The builds consumer starts the clone build: no source, the clone's buildspec
    consume_builds_queue(client)
    [clone] = codebuild_calls["StartBuild"]
    item = current(api, deployment)
    assert item["status"] == "building"
    assert clone["sourceTypeOverride"] == "NO_SOURCE"
    assert clone["idempotencyToken"] == f"{deployment['id']}-clone"
    assert clone["timeoutInMinutesOverride"] == 15
    commands = json.loads(clone["buildspecOverride"])["phases"]["build"]["commands"]
    fetch = next(c for c in commands if " fetch " in c)
    assert '--depth=1 --no-tags -- "$SHIPYARD_GIT_URL" "$SHIPYARD_GIT_SHA"' in fetch
    variables = {v["name"]: v for v in clone["environmentVariablesOverride"]}
    assert variables["SHIPYARD_GIT_URL"]["type"] == "PARAMETER_STORE"
    assert variables["SHIPYARD_GIT_SHA"] == {
        "name": "SHIPYARD_GIT_SHA",
        "value": sha,
        "type": "PLAINTEXT",
    }
    assert variables["SHIPYARD_BUILD_STEP"]["value"] == "clone"
    assert clone["artifactsOverride"]["path"] == f"clones/{project['id']}"
    assert any(
        line["message"].startswith(f"Cloning commit {sha[:12]} of file://")
        for line in log_lines(api, deployment)
    )

    # CodeBuild runs it: the checkout, packed without .git, and its message land in S3
    workdir = tmp_path / "codebuild"
    workdir.mkdir()
    phase, _ = run_buildspec(clone, workdir, allow_file=True)
    assert phase["phase-status"] == "SUCCEEDED"
    upload_artifacts(clone, workdir)
    build_id = _build_id(api, deployment)
    feed(client, event_of(clone, "SUCCEEDED", build_id))
    assert clone_parameters(deployment["id"]) == []

    # ... and the deployment goes on as an upload: its plan from the cloned files, the
    # normal build with the clone as its S3 source (once, the message delivered twice)
    duplicate = {"project_id": project["id"], "deployment_id": deployment["id"]}
    queues.send("builds", {"kind": "cloned", **duplicate, "build_id": build_id})
    consume_builds_queue(client)
    [_, build] = codebuild_calls["StartBuild"]
    assert build["sourceTypeOverride"] == "S3"
    assert build["sourceLocationOverride"] == (
        f"shipyard-artifacts/clones/{project['id']}/{deployment['id']}/source.tar.gz"
    )
    assert build["idempotencyToken"] == deployment["id"]
    assert "post_build" in json.loads(build["buildspecOverride"])["phases"]
    building = current(api, deployment)
    assert building["status"] == "building"
    assert building["framework"] == "static"
    assert building["source"]["message"] == "Ship the site"
    assert building["source"]["sha"] == sha
    main_build = _build_id(api, deployment)
    assert main_build != build_id

    # A late repeat of the clone's success changes nothing; the build's own success builds
    feed(client, event_of(clone, "SUCCEEDED", build_id))
    consume_builds_queue(client)
    assert len(codebuild_calls["StartBuild"]) == 2
    feed(client, state_change("SUCCEEDED", main_build, deployment["id"]))
    assert current(api, deployment)["status"] == "built"


def _build_id(api, deployment) -> str:
    from chalicelib.store import deployments as store

    return store.get(deployment["project_id"], deployment["id"])["build_id"]


def test_a_commit_the_repository_lacks_fails_with_the_step_that_failed(
    api, client, aws, repo, tmp_path, monkeypatch, codebuild_calls
):
    project = git_project(api, f"file://{repo}")
    missing = "0123456789abcdef0123456789abcdef01234567"
    deployment = deploy_sha(api, project, missing)
    use_aws_stage(monkeypatch)
    consume_builds_queue(client)
    [clone] = codebuild_calls["StartBuild"]

    workdir = tmp_path / "codebuild"
    workdir.mkdir()
    phase, _ = run_buildspec(clone, workdir, allow_file=True)
    assert phase["phase-status"] == "FAILED"
    feed(client, event_of(clone, "FAILED", _build_id(api, deployment), [phase]))

    failed = current(api, deployment)
    assert (failed["status"], failed["error_code"]) == ("failed", "build_failed")
    expected = (
        "The clone failed: could not fetch commit 0123456789ab: the repository does not have it"
    )
    assert failed["error_message"] == expected
    assert any(expected in line["message"] for line in log_lines(api, deployment))
    assert len(codebuild_calls["StartBuild"]) == 1
    assert clone_parameters(deployment["id"]) == []


def test_an_unreachable_repository_fails_and_its_token_is_never_shown(
    api, client, aws, tmp_path, monkeypatch, codebuild_calls
):
    from chalicelib.host.processes import free_port

    url = f"https://x-access-token:{TOKEN}@127.0.0.1:{free_port()}/acme/web.git"
    project = git_project(api, url)
    deployment = deploy_sha(api, project, "89abcdef0123456789abcdef0123456789abcdef")
    use_aws_stage(monkeypatch)
    consume_builds_queue(client)
    [clone] = codebuild_calls["StartBuild"]

    # The URL travels in Parameter Store only, never in the request itself
    assert TOKEN not in json.dumps(clone)
    [stored] = clone_parameters(deployment["id"])
    assert [
        v["value"] for v in clone["environmentVariablesOverride"] if v["name"] == "SHIPYARD_GIT_URL"
    ] == [stored]

    workdir = tmp_path / "codebuild"
    workdir.mkdir()
    phase, printed = run_buildspec(clone, workdir)
    assert phase["phase-status"] == "FAILED"
    assert "ls-remote" in phase["phase-context"][0]
    # git's complaint, as CodeBuild would log it, has the credentials redacted
    assert "127.0.0.1" in printed and TOKEN not in printed
    event = event_of(clone, "FAILED", _build_id(api, deployment), [phase])
    assert TOKEN not in json.dumps(event)
    feed(client, event)

    failed = current(api, deployment)
    assert (failed["status"], failed["error_code"]) == ("failed", "build_failed")
    assert failed["error_message"] == (
        "The clone failed: the repository could not be read "
        "(it is unreachable, or refused the credentials)"
    )
    everything = json.dumps([failed, log_lines(api, deployment)])
    assert TOKEN not in everything
    assert clone_parameters(deployment["id"]) == []


def test_a_clone_past_the_build_timeout_fails_timed_out(
    api, client, aws, repo, monkeypatch, codebuild_calls
):
    from tests.git_support import git

    project = git_project(api, f"file://{repo}")
    deployment = deploy_sha(api, project, git(repo, "rev-parse", "HEAD"))
    use_aws_stage(monkeypatch)
    consume_builds_queue(client)
    [clone] = codebuild_calls["StartBuild"]

    feed(client, event_of(clone, "TIMED_OUT", _build_id(api, deployment)))

    failed = current(api, deployment)
    assert (failed["status"], failed["error_code"]) == ("failed", "timed_out")
    assert failed["error_message"].startswith("The clone timed out: commit ")
    assert len(codebuild_calls["StartBuild"]) == 1


def test_cancel_during_the_clone_stops_the_clone_build(
    api, client, aws, repo, monkeypatch, codebuild_calls
):
    from tests.git_support import git

    project = git_project(api, f"file://{repo}")
    deployment = deploy_sha(api, project, git(repo, "rev-parse", "HEAD"))
    use_aws_stage(monkeypatch)
    consume_builds_queue(client)
    [clone] = codebuild_calls["StartBuild"]
    build_id = _build_id(api, deployment)

    path = f"/v1/projects/{project['id']}/deployments/{deployment['id']}/cancel"
    assert api.post(path).json["data"]["status"] == "canceled"
    assert [c["id"] for c in codebuild_calls["StopBuild"]] == [build_id]

    # A success that raced the cancel builds nothing
    feed(client, event_of(clone, "SUCCEEDED", build_id))
    consume_builds_queue(client)
    assert len(codebuild_calls["StartBuild"]) == 1
    assert current(api, deployment)["status"] == "canceled"


def test_the_clone_builds_redaction_hides_credentials_in_what_git_prints():
    # What git writes to stderr in the clone build goes through this before CodeBuild
    # logs it, as git/refs.py `redact` does in Shipyard's own processes
    from chalicelib.builders.codebuild import REDACT
    from chalicelib.git.refs import redact

    said = f"fatal: unable to access 'https://x-access-token:{TOKEN}@git.example/a.git/': 403"
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; printf '%s\\n' \"$SAID\" | {REDACT}"],
        env={"PATH": os.environ["PATH"], "SAID": said},
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert done.stderr.strip() == redact(said)
    assert TOKEN not in done.stderr and "https://***@git.example/a.git/" in done.stderr
