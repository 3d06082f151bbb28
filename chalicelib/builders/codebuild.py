"""CodeBuildBuilder: the build engine on AWS, and the EventBridge events that report on it.

A build runs in the CodeBuild project declared in infra/resources.json
(`codebuild_projects.build`), with everything that is per deployment passed as overrides
of `start_build`: the uploaded .tar.gz as an S3 source, the plan's buildspec, the
project's env (plus SHIPYARD_DEPLOYMENT_ID, which the state-change events carry back),
and an S3 artifact location that puts the packed artifact exactly at
`artifacts.artifact_key(project_id, deployment_id)`.

The source must have passed inspect_archive before (make_plan needs its report anyway):
the buildspec unpacks it with tar.

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
from chalicelib.ports import BuildJob

PROJECT = "build"
DETAIL_TYPE = "CodeBuild Build State Change"
DEPLOYMENT_VARIABLE = "SHIPYARD_DEPLOYMENT_ID"
SOURCE_VARIABLE = "SHIPYARD_SOURCE_ARCHIVE"
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


def secrets_path(deployment_id: str) -> str:
    return f"/{get_settings().resource_prefix}/builds/{deployment_id}"


def project_name() -> str:
    return f"{get_settings().resource_prefix}-{PROJECT}"


class Buildspec(Protocol):
    """What a build runs: a BuildPlan, or the plan with the image build after it."""

    def buildspec(self) -> dict[str, Any]: ...


class CodeBuildBuilder:
    def start(self, job: BuildJob, plan: Buildspec) -> str:
        """Start the build of `job` by `plan`'s buildspec; return CodeBuild's build id."""
        variables = {k: v for k, v in job.env.items() if not k.startswith(RESERVED_PREFIX)}
        variables[DEPLOYMENT_VARIABLE] = job.deployment_id
        variables[SOURCE_VARIABLE] = PurePosixPath(job.source_key).name
        minutes = min(max(math.ceil(job.timeout_s / 60), MIN_TIMEOUT_MINUTES), MAX_TIMEOUT_MINUTES)
        stored = self._store_secrets(job, variables)
        overrides = [
            {"name": key, "value": stored[key], "type": "PARAMETER_STORE"}
            if key in stored
            else {"name": key, "value": value, "type": "PLAINTEXT"}
            for key, value in variables.items()
        ]
        try:
            return self._start_build(job, plan, overrides, minutes)
        except Exception:
            self.forget_secrets(job.deployment_id)
            raise

    def _start_build(
        self, job: BuildJob, plan: Buildspec, overrides: list[dict[str, str]], minutes: int
    ) -> str:
        settings = get_settings()
        path, name, _ = artifact_key(job.project_id, job.deployment_id).rsplit("/", 2)
        response = client("codebuild").start_build(
            projectName=project_name(),
            sourceTypeOverride="S3",
            sourceLocationOverride=f"{settings.bucket}/{job.source_key}",
            buildspecOverride=json.dumps(plan.buildspec()),
            environmentVariablesOverride=overrides,
            # packaging NONE puts the buildspec's one artifact file in <path>/<name>/.
            artifactsOverride={
                "type": "S3",
                "location": settings.bucket,
                "path": path,
                "name": name,
                "namespaceType": "NONE",
                "packaging": "NONE",
            },
            timeoutInMinutesOverride=minutes,
            idempotencyToken=job.deployment_id,
        )
        return response["build"]["id"]

    def _store_secrets(self, job: BuildJob, variables: dict[str, str]) -> dict[str, str]:
        """Write the job's secret values to Parameter Store; their parameters' names by key.
        An empty value has nothing to hide (and SSM refuses it): it stays plain."""
        ssm = client("ssm")
        stored = {}
        for key in job.secret_keys:
            if variables.get(key):
                name = f"{secrets_path(job.deployment_id)}/{key}"
                ssm.put_parameter(
                    Name=name, Value=variables[key], Type="SecureString", Overwrite=True
                )
                stored[key] = name
        return stored

    def forget_secrets(self, deployment_id: str) -> None:
        """Delete the secrets a deployment's build was given (none: nothing happens)."""
        ssm = client("ssm")
        pages = ssm.get_paginator("get_parameters_by_path").paginate(
            Path=secrets_path(deployment_id)
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
    variables = (info.get("environment") or {}).get("environment-variables") or []
    deployment_id = next(
        (v.get("value") for v in variables if v.get("name") == DEPLOYMENT_VARIABLE), None
    )
    message = _error_message(raw_status, info.get("phases") or []) if status == "failed" else None
    return BuildStateChange(build_id, deployment_id, status, message, error_code)


def _error_message(raw_status: str, phases: list[dict]) -> str:
    text = {
        "FAILED": "the build failed",
        "FAULT": "CodeBuild failed to run the build",
        "TIMED_OUT": "the build did not finish in time (timeout)",
        "STOPPED": "the build was stopped",
    }[raw_status]
    for phase in phases:
        if phase.get("phase-status") in FAILED_PHASE_STATUSES:
            context = "; ".join(c for c in phase.get("phase-context") or [] if c)
            text += f" in the {phase.get('phase-type', 'unknown').lower()} phase"
            return f"{text}: {context}" if context else text
    return text
