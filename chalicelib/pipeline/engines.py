"""Which build engine and app runtime this process drives, picked by stage.

Locally (stage `local` or `test`) builds run in this process (LocalBuildEngine, one thread
per build) and apps run as local processes (LocalApps). On AWS builds run on CodeBuild
(CodeBuildEngine: the archive is checked here, then CodeBuild builds the artifact and the
app's image), and apps run on Lambda (LambdaApps). The orchestration (builds.py,
workflow.py) sees only the ports of chalicelib/ports.py. The local adapters live as long
as the process, one per state directory (tests give each their own).
"""

from __future__ import annotations

import shlex
from contextlib import contextmanager
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.core.settings import get_settings, state_dir
from chalicelib.ports import AppRuntime, BuildEngine, BuildJob, BuildOutcome, OnFinished, OnLog

if TYPE_CHECKING:
    from chalicelib.builders.local import LocalBuildEngine
    from chalicelib.buildplan.model import BuildPlan
    from chalicelib.runtimes.edge import CaddyEdge
    from chalicelib.runtimes.local import LocalProcessRuntime
    from chalicelib.runtimes.runtime_logs import RuntimeLogs

# What is read of a clone build's commit.txt; its first line is kept to MESSAGE_CHARS, as
# builders/git.py does locally.
MAX_COMMIT_MESSAGE = 4096
MESSAGE_CHARS = 300

# The adapters are imported where they are picked, not at the top: a Lambda that serves the
# API loads neither the local engines nor CodeBuild's and Lambda's, and its cold start
# doesn't pay for them (bench: the import ratio).


def is_local() -> bool:
    return get_settings().stage in ("local", "test")


def build_method() -> str:
    return build_engine().method


def app_dir(deployment_id: str) -> Path:
    return state_dir() / "artifacts" / deployment_id


@cache
def _local_runtime(directory: str) -> LocalProcessRuntime:
    from chalicelib.runtimes.local import LocalProcessRuntime

    return LocalProcessRuntime(Path(directory))


@cache
def _edge(directory: str) -> CaddyEdge:
    from chalicelib.runtimes.edge import CaddyEdge

    return CaddyEdge(Path(directory))


@cache
def _runtime_logs(directory: str) -> RuntimeLogs:
    from chalicelib.runtimes.runtime_logs import RuntimeLogs

    return RuntimeLogs(Path(directory))


def edge() -> CaddyEdge:
    """The local edge (Caddy) of this state directory: the projects' URLs."""
    return _edge(str(state_dir()))


@cache
def _local_builds(directory: str) -> LocalBuildEngine:
    from chalicelib.builders.local import LocalBuildEngine

    return LocalBuildEngine(Path(directory))


def runtime() -> LocalProcessRuntime:
    """The local runtime (processes) of this state directory."""
    return _local_runtime(str(state_dir() / "apps"))


def local_builds() -> LocalBuildEngine:
    return _local_builds(str(state_dir() / "builds"))


# Adapters handed in by whoever composes the process differently (the unit tests' fakes).
_given: dict[str, Any] = {}


@contextmanager
def given(build_engine: BuildEngine | None = None, apps: AppRuntime | None = None):
    """Drive these adapters instead of the stage's own while the block runs."""
    before = dict(_given)
    _given.update({k: v for k, v in (("build", build_engine), ("apps", apps)) if v is not None})
    try:
        yield
    finally:
        _given.clear()
        _given.update(before)


def build_engine() -> BuildEngine:
    if "build" in _given:
        return _given["build"]
    return local_builds() if is_local() else CodeBuildEngine()


def apps() -> AppRuntime:
    if "apps" in _given:
        return _given["apps"]
    if is_local():
        from chalicelib.runtimes.local_apps import LocalApps

        return LocalApps(
            runtime(),
            state_dir() / "artifacts",
            edge(),
            _runtime_logs(str(state_dir())),
            get_settings().drain_grace_s,
        )
    from chalicelib.runtimes.aws_lambda import LambdaApps, LambdaRuntime

    settings = get_settings()
    return LambdaApps(
        LambdaRuntime(
            settings.app_role_arn or "", log_retention_days=settings.app_log_retention_days
        )
    )


def is_building(deployment_id: str) -> bool:
    """Whether this process runs the deployment's local build now."""
    return local_builds().is_building(deployment_id)


def shutdown(timeout_s: float = 15.0) -> None:
    """The local stack on its way out: cancel the local builds (they end failed, to be
    retried), wait for them, stop every app this process's runtime runs, then the edge."""
    if is_local():
        local_builds().shutdown(timeout_s)
        runtime().stop_all()
        edge().stop()


class ImageBuild:
    """A build plan whose CodeBuild buildspec also builds the app's image and pushes it
    (runtimes/image.py), after packing the artifact: on AWS apps run from images."""

    def __init__(self, plan: BuildPlan, uri: str) -> None:
        self.plan = plan
        self.uri = uri

    def buildspec(self) -> dict[str, Any]:
        from chalicelib.runtimes.image import buildspec_commands

        spec = self.plan.buildspec()
        app = '"$CODEBUILD_SRC_DIR"' + (
            f"/{shlex.quote(self.plan.root_directory)}" if self.plan.root_directory else ""
        )
        spec["phases"]["post_build"] = {
            "on-failure": "ABORT",
            "commands": [f"cd {app} && {c}" for c in buildspec_commands(self.plan, self.uri)],
        }
        return spec


class CodeBuildEngine:
    """The build port on AWS. The archive is checked and the plan made here (a bad archive
    fails at once, without a CodeBuild build); the outcome comes later, from CodeBuild's
    state-change events. A git source is cloned first by a CodeBuild build of its own
    (builders/codebuild.py `start_clone`); when it has succeeded, `cloned` goes on with the
    archive it made exactly as with an upload."""

    method = "codebuild"

    def start(self, job: BuildJob, on_log: OnLog, on_finished: OnFinished) -> dict[str, Any]:
        from chalicelib.builders.codebuild import CodeBuildBuilder
        from chalicelib.git.remote import Unreachable, check_outbound, pin

        if job.git is None:
            return self._build(job, on_log, on_finished)
        try:
            entry = pin(job.git["url"], check_outbound(job.git["url"]))
        except Unreachable as error:
            on_finished(
                BuildOutcome.failed("build_failed", f"The repository is unreachable: {error}")
            )
            return {}
        build_id = CodeBuildBuilder().start_clone(job, entry)
        on_log(
            "system",
            f"Cloning commit {job.git['sha'][:12]} of {job.git['display']} "
            f"in CodeBuild build {build_id}",
        )
        return {"build_id": build_id, "clone_build_id": build_id}

    def cloned(
        self, job: BuildJob, on_log: OnLog, on_finished: OnFinished
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The clone build of `job` succeeded: build the archive it made as an upload.
        Returns the facts to record and what was learnt about the source (the commit
        message's first line)."""
        from chalicelib.aws import objects
        from chalicelib.builders.codebuild import clone_key, commit_key

        key = clone_key(job.project_id, job.deployment_id)
        size = objects.size_of(key)
        limit = get_settings().upload_max_bytes
        if size is None:
            on_finished(BuildOutcome.failed("build_failed", "The clone build left no archive"))
            return {}, {}
        if size > limit:
            on_finished(
                BuildOutcome.failed(
                    "build_failed",
                    f"The checkout packs to {size} bytes, more than the {limit} an upload may be",
                )
            )
            return {}, {}
        body = objects.open_stream(commit_key(job.project_id, job.deployment_id))
        try:
            lines = body.read(MAX_COMMIT_MESSAGE).decode("utf-8", "replace").splitlines()
        finally:
            body.close()
        message = lines[0][:MESSAGE_CHARS] if lines else ""
        on_log("system", f"Cloned {(job.git or {}).get('sha', '')[:12]}: {message}")
        facts = self._build(replace(job, git=None, source_key=key), on_log, on_finished)
        return facts, {"message": message}

    def _build(self, job: BuildJob, on_log: OnLog, on_finished: OnFinished) -> dict[str, Any]:
        from chalicelib.archive.inspect import InvalidArchive, inspect_archive
        from chalicelib.aws import objects
        from chalicelib.builders.codebuild import CodeBuildBuilder
        from chalicelib.buildplan.model import PlanError
        from chalicelib.buildplan.plan import make_plan

        try:
            report = inspect_archive(objects.open_stream(job.source_key))
            plan = make_plan(report.files, job.project_runtime, job.build, job.run)
        except InvalidArchive as error:
            on_finished(
                BuildOutcome.failed(
                    "invalid_archive", f"Invalid archive ({error.rule}): {error.message}"
                )
            )
            return {}
        except PlanError as error:
            on_finished(BuildOutcome.failed("build_failed", str(error)))
            return {}
        uri = f"{get_settings().image_repository}:{job.deployment_id}"
        build_id = CodeBuildBuilder().start(job, ImageBuild(plan, uri))
        on_log("build", f"CodeBuild build {build_id} started")
        return {
            "build_id": build_id,
            "plan": plan.model_dump(mode="json"),
            "framework": plan.framework,
            "image_tag": uri,
        }

    def cancel(self, deployment_id: str, build_id: str | None) -> None:
        from chalicelib.builders.codebuild import CodeBuildBuilder

        if build_id:
            CodeBuildBuilder().stop(build_id)
