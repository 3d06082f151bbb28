"""CodeBuildBuilder: the build engine on AWS, and the EventBridge events that report on it.

A build runs in the CodeBuild project declared in infra/resources.json
(`codebuild_projects.build`), with everything that is per deployment passed as overrides
of `start_build`: the uploaded .tar.gz as an S3 source, the plan's buildspec, the
project's env (plus SHIPYARD_DEPLOYMENT_ID, which the state-change events carry back),
and an S3 artifact location that puts the packed artifact exactly at
`artifacts.artifact_key(project_id, deployment_id)`.

The source must have passed inspect_archive before (make_plan needs its report anyway):
the buildspec unpacks it with tar.

A git source is cloned by a build of its own first (`start_clone`, docs/git.md): the same
project with no source, a buildspec that fetches exactly the resolved commit (shallow,
`--` before the URL and the sha) and packs the tree without `.git` as `source.tar.gz`,
the commit message's first line beside it as `commit.txt`, both put by CodeBuild's
artifact upload under `clone_prefix(project_id, deployment_id)`. Its SUCCEEDED event
carries SHIPYARD_BUILD_STEP=clone; the pipeline then builds that archive exactly as an
upload. The clone URL (which may hold a token) reaches the build only as a
PARAMETER_STORE variable; git's own error output is redacted by the buildspec before
CodeBuild logs it, and the failure the event reports names the clone's step that failed,
from the command text in its phase context (which holds the variable's name, not the URL).

Secret env values never travel as PLAINTEXT build variables (anyone allowed
`codebuild:BatchGetBuilds` could read those): each is written as an SSM SecureString under
`/<prefix>/builds/<deployment_id>/` and passed as a PARAMETER_STORE variable, which
CodeBuild resolves inside the build. They are deleted when the build ends
(`forget_secrets`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Protocol

from chalicelib.archive.artifacts import artifact_key
from chalicelib.aws.clients import client
from chalicelib.core.settings import get_settings
from chalicelib.git.refs import redact
from chalicelib.ports import BuildJob

PROJECT = "build"
DETAIL_TYPE = "CodeBuild Build State Change"
DEPLOYMENT_VARIABLE = "SHIPYARD_DEPLOYMENT_ID"
SOURCE_VARIABLE = "SHIPYARD_SOURCE_ARCHIVE"
STEP_VARIABLE = "SHIPYARD_BUILD_STEP"
URL_VARIABLE = "SHIPYARD_GIT_URL"
SHA_VARIABLE = "SHIPYARD_GIT_SHA"
BUILD_STEP, CLONE_STEP = "build", "clone"
CLONE_ARCHIVE, COMMIT_FILE = "source.tar.gz", "commit.txt"
# CodeBuild refuses variables under its own prefix; the project's env may still hold them.
RESERVED_PREFIX = "CODEBUILD_"
MIN_TIMEOUT_MINUTES, MAX_TIMEOUT_MINUTES = 5, 2160
SSM_DELETE_BATCH = 10

# CodeBuild's build-status -> (deployment status, error_code).
STATUSES = {
    "IN_PROGRESS": ("building", None),
    "SUCCEEDED": ("built", None),
    "FAILED": ("failed", "build_failed"),
    "FAULT": ("failed", "internal_error"),
    "TIMED_OUT": ("failed", "timed_out"),
    "STOPPED": ("failed", None),
}
FAILED_PHASE_STATUSES = frozenset({"FAILED", "FAULT", "TIMED_OUT", "STOPPED", "CLIENT_ERROR"})


def secrets_path(deployment_id: str, step: str = BUILD_STEP) -> str:
    """Where a build's secrets are stored: the clone's apart from the build's, so that a
    late event of the clone never deletes what the build after it was given."""
    suffix = "-clone" if step == CLONE_STEP else ""
    return f"/{get_settings().resource_prefix}/builds/{deployment_id}{suffix}"


def clone_prefix(project_id: str, deployment_id: str) -> str:
    """The folder of the bucket the clone build puts the checkout's archive in."""
    return f"clones/{project_id}/{deployment_id}"


def clone_key(project_id: str, deployment_id: str) -> str:
    return f"{clone_prefix(project_id, deployment_id)}/{CLONE_ARCHIVE}"


def commit_key(project_id: str, deployment_id: str) -> str:
    return f"{clone_prefix(project_id, deployment_id)}/{COMMIT_FILE}"


# git's URLs with their `user:password@` made `***@` (git/refs.py `redact`, in sed).
REDACT = r"""sed -E 's#([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@[:space:]]+@#\1***@#g' >&2"""
# The clone's steps: (a fragment of the command that is in no other, the command, what its
# failure means). Each is one command, so a failed build's phase context, which names the
# command, tells the step. git's output goes through the redaction; `pipefail` keeps git's
# exit status through the pipe.
# git connects to the addresses the API checked (SHIPYARD_GIT_RESOLVE, curl's resolve
# entry), not to what a second lookup of the name would answer; nothing when it is empty.
RESOLVE_VARIABLE = "SHIPYARD_GIT_RESOLVE"
PINNED = f'${{{RESOLVE_VARIABLE}:+-c "http.curloptResolve=${RESOLVE_VARIABLE}"}}'
CLONE_STEPS: tuple[tuple[str, str, str], ...] = (
    ("git init", "git init --quiet src", "could not prepare the clone"),
    (
        "ls-remote",
        f"git -c http.followRedirects=false {PINNED} ls-remote"
        f' -- "$SHIPYARD_GIT_URL" HEAD 2>&1 >/dev/null | {REDACT}',
        "the repository could not be read (it is unreachable, or refused the credentials)",
    ),
    (
        " fetch ",
        f"git -C src -c http.followRedirects=false {PINNED} fetch --quiet --depth=1 --no-tags"
        f' -- "$SHIPYARD_GIT_URL" "$SHIPYARD_GIT_SHA" 2>&1 | {REDACT}',
        "could not fetch commit {sha}: the repository does not have it",
    ),
    (
        "checkout",
        f"git -C src checkout --quiet --detach FETCH_HEAD 2>&1 | {REDACT}",
        "could not check out commit {sha}",
    ),
    (
        "log -1",
        f"git -C src log -1 --format=%s FETCH_HEAD > {COMMIT_FILE}",
        "could not read the commit's message",
    ),
    (
        "tar -czf",
        f"rm -rf src/.git && tar -czf {CLONE_ARCHIVE} -C src .",
        "could not pack the checkout",
    ),
)


def clone_buildspec() -> dict[str, Any]:
    """The clone build's buildspec: git's clean environment (as git/remote.py `git_env`
    locally: no prompt, no system or global config, https only), then CLONE_STEPS."""
    return {
        "version": "0.2",
        "env": {
            "shell": "bash",
            "variables": {
                "GIT_TERMINAL_PROMPT": "0",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": "/dev/null",
                "GIT_ALLOW_PROTOCOL": "https",
                "GIT_ASKPASS": "/bin/false",
            },
        },
        "phases": {
            "build": {
                "on-failure": "ABORT",
                "commands": ["set -o pipefail", *(command for _, command, _ in CLONE_STEPS)],
            }
        },
        "artifacts": {"files": [CLONE_ARCHIVE, COMMIT_FILE]},
    }


def project_name() -> str:
    return f"{get_settings().resource_prefix}-{PROJECT}"


class Buildspec(Protocol):
    """What a build runs: a BuildPlan, or the plan with the image build after it."""

    def buildspec(self) -> dict[str, Any]: ...


def _minutes(timeout_s: int) -> int:
    return min(max(math.ceil(timeout_s / 60), MIN_TIMEOUT_MINUTES), MAX_TIMEOUT_MINUTES)


def _artifacts(folder: str) -> dict[str, str]:
    """An S3 artifact location that puts the buildspec's artifact files in `folder`/
    (packaging NONE: <path>/<name>/<file>)."""
    path, name = folder.rsplit("/", 1)
    return {
        "type": "S3",
        "location": get_settings().bucket,
        "path": path,
        "name": name,
        "namespaceType": "NONE",
        "packaging": "NONE",
    }


class CodeBuildBuilder:
    def start(self, job: BuildJob, plan: Buildspec) -> str:
        """Start the build of `job` by `plan`'s buildspec; return CodeBuild's build id."""
        variables = {k: v for k, v in job.env.items() if not k.startswith(RESERVED_PREFIX)}
        variables[DEPLOYMENT_VARIABLE] = job.deployment_id
        variables[SOURCE_VARIABLE] = PurePosixPath(job.source_key).name
        secrets = {key: variables[key] for key in job.secret_keys if variables.get(key)}
        overrides = self._overrides(job.deployment_id, BUILD_STEP, variables, secrets)
        try:
            response = client("codebuild").start_build(
                projectName=project_name(),
                sourceTypeOverride="S3",
                sourceLocationOverride=f"{get_settings().bucket}/{job.source_key}",
                buildspecOverride=json.dumps(plan.buildspec()),
                environmentVariablesOverride=overrides,
                artifactsOverride=_artifacts(
                    artifact_key(job.project_id, job.deployment_id).rsplit("/", 1)[0]
                ),
                timeoutInMinutesOverride=_minutes(job.timeout_s),
                idempotencyToken=job.deployment_id,
            )
        except Exception:
            self.forget_secrets(job.deployment_id)
            raise
        return response["build"]["id"]

    def start_clone(self, job: BuildJob, resolve: str = "") -> str:
        """Start the build that clones `job.git`'s commit into the bucket; its build id.
        None of the project's env is given to it, as to git locally. `resolve`: the
        addresses the remote was checked at (git/remote.py's `pin`), which git connects to
        instead of looking the name up again."""
        if job.git is None:
            raise ValueError("the job has no git source to clone")
        variables = {
            DEPLOYMENT_VARIABLE: job.deployment_id,
            STEP_VARIABLE: CLONE_STEP,
            SHA_VARIABLE: job.git["sha"],
            RESOLVE_VARIABLE: resolve,
        }
        overrides = self._overrides(
            job.deployment_id, CLONE_STEP, variables, {URL_VARIABLE: job.git["url"]}
        )
        try:
            response = client("codebuild").start_build(
                projectName=project_name(),
                sourceTypeOverride="NO_SOURCE",
                buildspecOverride=json.dumps(clone_buildspec()),
                environmentVariablesOverride=overrides,
                artifactsOverride=_artifacts(clone_prefix(job.project_id, job.deployment_id)),
                timeoutInMinutesOverride=_minutes(job.timeout_s),
                idempotencyToken=f"{job.deployment_id}-{CLONE_STEP}",
            )
        except Exception:
            self.forget_secrets(job.deployment_id, CLONE_STEP)
            raise
        return response["build"]["id"]

    def _overrides(
        self, deployment_id: str, step: str, plain: dict[str, str], secrets: dict[str, str]
    ) -> list[dict[str, str]]:
        """The build's variables: `secrets` written to Parameter Store and passed by the
        parameter's name (PARAMETER_STORE), the others as they are. An empty secret has
        nothing to hide (and SSM refuses it): it stays plain."""
        ssm = client("ssm")
        overrides = []
        for key, value in {**plain, **secrets}.items():
            if key in secrets and value:
                name = f"{secrets_path(deployment_id, step)}/{key}"
                ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
                overrides.append({"name": key, "value": name, "type": "PARAMETER_STORE"})
            else:
                overrides.append({"name": key, "value": value, "type": "PLAINTEXT"})
        return overrides

    def forget_secrets(self, deployment_id: str, step: str = BUILD_STEP) -> None:
        """Delete the secrets a deployment's build (or clone) was given (none: nothing
        happens)."""
        ssm = client("ssm")
        pages = ssm.get_paginator("get_parameters_by_path").paginate(
            Path=secrets_path(deployment_id, step)
        )
        names = [found["Name"] for page in pages for found in page["Parameters"]]
        for start in range(0, len(names), SSM_DELETE_BATCH):
            ssm.delete_parameters(Names=names[start : start + SSM_DELETE_BATCH])

    def stop(self, build_id: str) -> None:
        """Stop a build; a build that is unknown (or long gone) needs no stopping."""
        codebuild = client("codebuild")
        try:
            codebuild.stop_build(id=build_id)
        except codebuild.exceptions.ResourceNotFoundException:
            return


@dataclass
class BuildStateChange:
    build_id: str
    deployment_id: str | None
    status: str
    error_message: str | None
    error_code: str | None = None
    step: str = BUILD_STEP  # CLONE_STEP for the build that clones a git source


def parse_state_change(event: dict) -> BuildStateChange:
    """Map an EventBridge "CodeBuild Build State Change" event.

    `build_id` is the id `start` returned (the event carries the build's ARN).
    `deployment_id` is None for builds Shipyard did not start. Raises ValueError for an
    event of another kind or an unknown build status.
    """
    if event.get("detail-type") != DETAIL_TYPE:
        raise ValueError(f"not a {DETAIL_TYPE} event: {event.get('detail-type')!r}")
    detail = event.get("detail") or {}
    raw_status = detail.get("build-status")
    if raw_status not in STATUSES:
        raise ValueError(f"unknown CodeBuild build status {raw_status!r}")
    status, error_code = STATUSES[raw_status]
    build_id = str(detail.get("build-id", ""))
    if ":build/" in build_id:
        build_id = build_id.split(":build/", 1)[1]
    info = detail.get("additional-information") or {}
    variables = {
        v.get("name"): v.get("value")
        for v in (info.get("environment") or {}).get("environment-variables") or []
    }
    step = CLONE_STEP if variables.get(STEP_VARIABLE) == CLONE_STEP else BUILD_STEP
    message = None
    if status == "failed":
        phases = info.get("phases") or []
        if step == CLONE_STEP:
            message = _clone_error_message(raw_status, phases, variables.get(SHA_VARIABLE) or "")
        else:
            message = _error_message(raw_status, phases)
    return BuildStateChange(
        build_id, variables.get(DEPLOYMENT_VARIABLE), status, message, error_code, step
    )


def _failed_phase(phases: list[dict]) -> tuple[str, str] | None:
    """The first failed phase: (its type, its context joined)."""
    for phase in phases:
        if phase.get("phase-status") in FAILED_PHASE_STATUSES:
            context = "; ".join(c for c in phase.get("phase-context") or [] if c)
            return phase.get("phase-type", "unknown").lower(), context
    return None


def _error_message(raw_status: str, phases: list[dict]) -> str:
    text = {
        "FAILED": "the build failed",
        "FAULT": "CodeBuild failed to run the build",
        "TIMED_OUT": "the build did not finish in time (timeout)",
        "STOPPED": "the build was stopped",
    }[raw_status]
    failed = _failed_phase(phases)
    if failed is None:
        return text
    phase, context = failed
    text += f" in the {phase} phase"
    return f"{text}: {context}" if context else text


def _clone_error_message(raw_status: str, phases: list[dict], sha: str) -> str:
    """What the clone build's failure means, in the words of the local clone's
    (builders/git.py): the step that failed is found by its command in the phase context,
    which CodeBuild writes as "... Error while executing command: <command>. Reason: ..."."""
    short = sha[:12] or "the commit"
    if raw_status == "TIMED_OUT":
        return f"The clone timed out: commit {short} was not fetched within the build timeout"
    if raw_status == "FAULT":
        return "The clone failed: CodeBuild failed to run the clone"
    if raw_status == "STOPPED":
        return "The clone was stopped"
    failed = _failed_phase(phases)
    context = failed[1] if failed else ""
    for marker, _, meaning in CLONE_STEPS:
        if marker in context:
            return "The clone failed: " + meaning.format(sha=short)
    return "The clone failed" + (f": {redact(context)}" if context else "")
