"""Which build engine and runtime this process drives, and the local builds in flight.

Locally (stage `local` or `test`) builds run in this process with LocalBuilder, one thread
per build, and apps run as local processes (LocalProcessRuntime). On AWS, builds run on
CodeBuild (after the archive is checked here), which also builds and pushes the app's
image, and apps run on Lambda (LambdaRuntime). `apps()` gives the deploy workflow one
interface to both runtimes. Cancel events of local builds live here: the API and the pump
share this process in the local stack.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.core.log import logger
from chalicelib.core.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
_cancels: dict[str, threading.Event] = {}
_threads: dict[str, threading.Thread] = {}
_lock = threading.Lock()
_shutting_down = threading.Event()


def is_local() -> bool:
    return get_settings().stage in ("local", "test")


def build_method() -> str:
    return "local" if is_local() else "codebuild"


def state_dir() -> Path:
    configured = get_settings().state_dir
    return Path(configured) if configured else ROOT / ".local"


@cache
def _local_runtime(directory: str) -> Any:
    from chalicelib.runtimes.local import LocalProcessRuntime

    return LocalProcessRuntime(Path(directory))


def runtime() -> Any:
    """The local runtime (LocalProcessRuntime) of this state directory."""
    return _local_runtime(str(state_dir() / "apps"))


def app_dir(deployment_id: str) -> Path:
    return state_dir() / "artifacts" / deployment_id


def plan_of(item: dict[str, Any]) -> Any:
    from chalicelib.buildplan.plan import BuildPlan

    return BuildPlan.model_validate(item["plan"])


class LocalApps:
    """Deployments as local processes: each serves on its own port, which is also the
    project's URL once it is promoted."""

    def __init__(self, local_runtime: Any) -> None:
        self.runtime = local_runtime

    def start(self, item: dict[str, Any], env: dict[str, str], path: str, on_log) -> str:
        app = self.runtime.start(
            item["id"], item["project_id"], self.unpacked(item), plan_of(item), env, on_log=on_log
        )
        return app.url

    def unpacked(self, item: dict[str, Any]) -> Path:
        from chalicelib.archive.artifacts import download_and_unpack

        target = app_dir(item["id"])
        if not (target / ".shipyard-unpacked").exists():
            target.mkdir(parents=True, exist_ok=True)
            download_and_unpack(item["artifact_key"], target)
            (target / ".shipyard-unpacked").touch()
        return target

    def health_check(self, item: dict[str, Any], path: str, timeout_s: float):
        return self.runtime.health_check(item["id"], path, timeout_s)

    def alive(self, item: dict[str, Any]) -> tuple[bool, str]:
        if self.runtime.is_running(item["id"]):
            return True, "running"
        return False, self.runtime.health_check(item["id"], "/", 1.0)[1]

    def promote(self, item: dict[str, Any]) -> str:
        return item["url"]

    def stop(self, item: dict[str, Any]) -> None:
        self.runtime.stop(item["id"])


class LambdaApps:
    """Deployments as Lambda versions of the project's function (chalicelib/runtimes/
    aws_lambda.py), from the image the deployment's CodeBuild build pushed (`image_tag`).
    The project's URL is the function URL of its `live` alias."""

    def __init__(self, lambda_runtime: Any) -> None:
        self.runtime = lambda_runtime

    def start(self, item: dict[str, Any], env: dict[str, str], path: str, on_log) -> str:
        app = self.runtime.deploy(
            item["id"], item["project_id"], item["image_tag"], plan_of(item), env, path
        )
        return app.url

    def health_check(self, item: dict[str, Any], path: str, timeout_s: float):
        return self.runtime.health_check(item["project_id"], item["id"], path, timeout_s)

    def alive(self, item: dict[str, Any]) -> tuple[bool, str]:
        return True, "a Lambda version is always ready to be invoked"

    def promote(self, item: dict[str, Any]) -> str:
        return self.runtime.promote(item["project_id"], item["id"])

    def stop(self, item: dict[str, Any]) -> None:
        self.runtime.stop(item["project_id"], item["id"])


def apps() -> Any:
    """The runtime port of the deploy workflow: start, health_check, alive, promote, stop."""
    if is_local():
        return LocalApps(runtime())
    from chalicelib.runtimes.aws_lambda import LambdaRuntime

    settings = get_settings()
    return LambdaApps(LambdaRuntime(settings.app_role_arn or ""))


def image_uri(item: dict[str, Any]) -> str:
    return f"{get_settings().image_repository}:{item['id']}"


class ImageBuild:
    """A build plan whose CodeBuild buildspec also builds the app's image and pushes it
    (chalicelib/runtimes/image.py), after packing the artifact: on AWS apps run from
    images. Passed to CodeBuildBuilder in place of the plan (it only asks for buildspec)."""

    def __init__(self, plan: Any, uri: str) -> None:
        self.plan = plan
        self.uri = uri

    def buildspec(self) -> dict[str, Any]:
        import shlex

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


def job_for(item: dict[str, Any]) -> Any:
    from chalicelib.builders.local import BuildJob
    from chalicelib.deployments import service as deployments
    from chalicelib.store import projects as project_store

    project = project_store.get(item["workspace_id"], item["project_id"])
    return BuildJob(
        deployment_id=item["id"],
        project_id=item["project_id"],
        workspace_id=item["workspace_id"],
        source_key=item["source_key"],
        project_runtime=project.get("runtime", "auto"),
        build=project.get("build", {}),
        run=project.get("run", {}),
        env=deployments.env_of(item),
        timeout_s=get_settings().build_timeout_s,
    )


def start_build(item: dict[str, Any]) -> None:
    """Start the build of a `building` deployment; its result reaches builds.build_finished."""
    if is_local():
        cancel = threading.Event()
        thread = threading.Thread(
            target=_run_local_build, args=(item, cancel), name=f"build-{item['id']}", daemon=True
        )
        with _lock:
            _cancels[item["id"]] = cancel
            _threads[item["id"]] = thread
        thread.start()
    else:
        _start_codebuild(item)


def _run_local_build(item: dict[str, Any], cancel: threading.Event) -> None:
    from chalicelib.deployments import service as deployments
    from chalicelib.deployments.logs import BufferedLog
    from chalicelib.pipeline import builds

    sink = BufferedLog(item["project_id"], item["id"])
    try:
        from chalicelib.builders.local import LocalBuilder

        outcome = LocalBuilder(state_dir() / "builds").build(job_for(item), sink, cancel)
        sink.close()
        if _shutting_down.is_set():
            deployments.fail(
                item, "internal_error", "The local stack stopped during the build; retry it"
            )
        else:
            builds.build_finished(item, outcome)
    except Exception as error:
        logger().exception("Local build crashed", extra={"deployment_id": item["id"]})
        sink.close()
        deployments.fail(item, "internal_error", f"The build could not run: {type(error).__name__}")
    finally:
        with _lock:
            _cancels.pop(item["id"], None)
            _threads.pop(item["id"], None)


def _start_codebuild(item: dict[str, Any]) -> None:
    from chalicelib.archive.inspect import InvalidArchive, inspect_archive
    from chalicelib.aws import objects
    from chalicelib.builders.codebuild import CodeBuildBuilder
    from chalicelib.buildplan.plan import PlanError, make_plan
    from chalicelib.deployments import service as deployments
    from chalicelib.store import deployments as store

    job = job_for(item)
    try:
        report = inspect_archive(objects.open_stream(item["source_key"]))
        plan = make_plan(report.files, job.project_runtime, job.build, job.run)
    except InvalidArchive as error:
        deployments.fail(
            item, "invalid_archive", f"Invalid archive ({error.rule}): {error.message}"
        )
        return
    except PlanError as error:
        deployments.fail(item, "build_failed", str(error))
        return
    uri = image_uri(item)
    build_id = CodeBuildBuilder().start(job, ImageBuild(plan, uri))
    store.set_fields(
        item["project_id"],
        item["id"],
        {
            "build_id": build_id,
            "plan": plan.model_dump(mode="json"),
            "framework": plan.framework,
            "image_tag": uri,
        },
        ("building",),
    )
    deployments.log(item, "build", f"CodeBuild build {build_id} started")


def cancel_build(item: dict[str, Any]) -> None:
    """Stop a deployment's build, wherever it runs; nothing if it has none."""
    with _lock:
        cancel = _cancels.get(item["id"])
    if cancel is not None:
        cancel.set()
    elif item.get("build_id"):
        from chalicelib.builders.codebuild import CodeBuildBuilder

        CodeBuildBuilder().stop(item["build_id"])


def is_building(deployment_id: str) -> bool:
    with _lock:
        return deployment_id in _threads


def shutdown(timeout_s: float = 15.0) -> None:
    """The local stack on its way out: cancel the local builds (they end failed, to be
    retried), wait for them, and stop every app this process's runtime runs."""
    _shutting_down.set()
    try:
        with _lock:
            events = list(_cancels.values())
            threads = list(_threads.values())
        for event in events:
            event.set()
        for thread in threads:
            thread.join(timeout_s)
        if is_local():
            runtime().stop_all()
    finally:
        _shutting_down.clear()
