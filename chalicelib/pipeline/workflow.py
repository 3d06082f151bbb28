"""The deploy workflow (infra/deploy-workflow.asl.json) and the worker of its tasks.

Step Functions sequences Deploy -> Wait -> HealthCheck (retried while the app is not yet
healthy, within the project's health_check_timeout_s) -> Promote, or MarkFailed on any
error. Each task is a message on the deploy-tasks queue carrying a task token; this worker
does the step and answers. Every step is idempotent (a message can come twice, or again
after a task timeout) and a token the workflow no longer waits for is simply done.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from chalicelib.aws import queues, workflows
from chalicelib.buildplan.model import BuildPlan
from chalicelib.core.clock import parse_rfc3339
from chalicelib.core.log import logger
from chalicelib.core.settings import get_settings
from chalicelib.deployments import env as deployment_env
from chalicelib.deployments import service as deployments
from chalicelib.deployments.logs import BufferedLog
from chalicelib.deployments.service import StatusChanged
from chalicelib.deployments.status import ACTIVE
from chalicelib.pipeline import engines
from chalicelib.ports import AppSpec, DeployFailed
from chalicelib.store import deployments as store
from chalicelib.store import projects as project_store

TASK_QUEUE = "deploy-tasks"
# Errors the workers answer with; the definition retries only UNHEALTHY.
UNHEALTHY = "Shipyard.Unhealthy"
HEALTH_CHECK_FAILED = "Shipyard.HealthCheckFailed"
DEPLOY_FAILED = "Shipyard.DeployFailed"
MOVED_ON = "Shipyard.MovedOn"
ERROR_CODES = {
    HEALTH_CHECK_FAILED: "health_check_failed",
    UNHEALTHY: "health_check_failed",
    DEPLOY_FAILED: "deploy_failed",
    "States.Timeout": "timed_out",
}


# The sinks of apps started by this process, by deployment: an app's output goes to its
# deployment's log while it deploys, and stops going there when the deployment has ended.
_app_output: dict[str, BufferedLog] = {}


def end_app_output(deployment_id: str) -> None:
    sink = _app_output.pop(deployment_id, None)
    if sink is not None:
        sink.close()


class StepFailed(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(cause)
        self.error = error
        self.cause = cause


def start_when_built(change: StatusChanged) -> None:
    """A deployment that built, or that was created `deploying` (a redeploy, a rollback, a
    retry of one of those: nothing to build), goes to the deploy workflow."""
    status = change.after["status"]
    if status == "built" or (change.before is None and status == "deploying"):
        start(change.after)


def start(item: dict[str, Any]) -> None:
    """Start the workflow of a `built` (or, for redeploys and rollbacks, `deploying`)
    deployment. The execution is named after the deployment, so it runs once."""
    settings = get_settings()
    payload = {
        "deployment_id": item["id"],
        "project_id": item["project_id"],
        "task_queue_url": queues.url(TASK_QUEUE),
        "wait_s": settings.workflow_wait_s,
        "task_timeout_s": settings.workflow_task_timeout_s,
    }
    try:
        arn = workflows.start(item["id"], payload)
    except Exception:
        logger().exception(
            "Could not start the deploy workflow", extra={"deployment_id": item["id"]}
        )
        deployments.fail(item, "internal_error", "The deploy workflow could not be started")
        return
    store.set_fields(item["project_id"], item["id"], {"execution_arn": arn}, ACTIVE)


def stop(item: dict[str, Any], cause: str) -> None:
    workflows.stop(item["id"], cause)


def handle(message: dict[str, Any]) -> None:
    """One task message: do the step, answer the token."""
    step = STEPS.get(message.get("step", ""))
    token = message.get("task_token")
    if step is None or not token:
        logger().warning("Unknown deploy task", extra={"step": message.get("step")})
        return
    item = store.get(message["project_id"], message["deployment_id"])
    if item is None:
        workflows.fail(token, MOVED_ON, "The deployment no longer exists")
        return
    try:
        output = step(item, message)
    except StepFailed as failure:
        # The cause quotes the app's last output: masked before it is stored anywhere (the
        # deployment's item, the workflow's history).
        cause = deployment_env.masker_of(item)(failure.cause)
        # Kept on the deployment too: moto's SendTaskFailure drops the cause on its way to
        # the Catch, and MarkFailed needs it for the deployment's error_message.
        store.set_fields(
            item["project_id"],
            item["id"],
            {"step_error": failure.error, "step_cause": cause},
            ACTIVE,
        )
        workflows.fail(token, failure.error, cause)
        return
    workflows.succeed(token, output)


def _project(item: dict[str, Any]) -> dict[str, Any]:
    return project_store.get(item["workspace_id"], item["project_id"])


def _moved_on(item: dict[str, Any]) -> StepFailed:
    return StepFailed(MOVED_ON, f"The deployment is {item['status']}")


def deploy(item: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    if item["status"] == "built":
        moved = deployments.move(item, "deploying", "Deploying")
        item = moved or store.get(item["project_id"], item["id"]) or item
    if item["status"] != "deploying":
        raise _moved_on(item)
    apps = engines.apps()
    path = _project(item).get("run", {}).get("health_check_path") or "/"
    sink = _app_output.setdefault(item["id"], BufferedLog(item["project_id"], item["id"]))
    try:
        url = apps.start(app_spec(item, path), sink)
    except Exception as error:
        end_app_output(item["id"])
        raise StepFailed(DEPLOY_FAILED, _reason(error)) from None
    sink.flush()
    if store.set_fields(item["project_id"], item["id"], {"url": url}, ("deploying",)) is None:
        # Canceled or timed out while the app was starting: whoever moved it may have
        # looked for the app before it existed.
        apps.stop(item)
        raise _moved_on(store.get(item["project_id"], item["id"]) or item)
    deployments.log(item, "deploy", f"Started at {url}; health checks follow")
    return {"url": url}


def app_spec(item: dict[str, Any], health_check_path: str = "/") -> AppSpec:
    """What a runtime needs to start a deployment's app: its build plan, artifact or
    image, and its environment snapshot, decrypted."""
    return AppSpec(
        deployment_id=item["id"],
        project_id=item["project_id"],
        plan=BuildPlan.model_validate(item["plan"]),
        artifact_key=item.get("artifact_key"),
        image_tag=item.get("image_tag"),
        env=deployment_env.env_of(item),
        health_check_path=health_check_path,
        mask=deployment_env.masker_of(item),
        port=urlsplit(item.get("url") or "").port,
    )


def _reason(error: Exception) -> str:
    if isinstance(error, DeployFailed):
        return str(error)
    logger().exception("Deploy step crashed")
    return f"The app could not be started ({type(error).__name__})"


def health_check(item: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    if item["status"] == "running":
        return {"healthy": True}
    if item["status"] != "deploying":
        raise _moved_on(item)
    run = _project(item).get("run", {})
    path = run.get("health_check_path") or "/"
    budget = run.get("health_check_timeout_s") or 30
    apps = engines.apps()
    alive, detail = apps.alive(item)
    if not alive:
        raise StepFailed(DEPLOY_FAILED, f"The app stopped before it became healthy: {detail}")
    ok, detail = apps.health_check(item, path, get_settings().health_check_request_timeout_s)
    if ok:
        deployments.log(item, "deploy", f"Health check passed: {detail}")
        return {"healthy": True}
    waited = (datetime.now(UTC) - parse_rfc3339(item["status_at"])).total_seconds()
    if waited >= budget:
        raise StepFailed(
            HEALTH_CHECK_FAILED,
            f"The app was not healthy within {budget} s (health_check_timeout_s): {detail}",
        )
    deployments.log(item, "deploy", f"Health check not passing yet: {detail}")
    raise StepFailed(UNHEALTHY, detail)


def promote(item: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    if item["status"] == "running":
        return {"promoted": True}
    if item["status"] != "deploying":
        raise _moved_on(item)
    if item.get("environment") == "preview":
        return _run_preview(item)
    apps = engines.apps()
    # The app's output so far is written before the `running` line; later output is its
    # runtime log's.
    end_app_output(item["id"])
    project_url = _project(item).get("url")
    # One switch of a project at a time in this process: the edge and the project's
    # running deployment end up naming the same one, whoever promotes concurrently.
    with _switching(item["project_id"]):
        try:
            served_at = apps.promote({**item, "project_url": project_url})
        except Exception as error:
            raise StepFailed(DEPLOY_FAILED, _reason(error)) from None
        promoted, previous_id = deployments.promote(item, served_at)
        if not promoted:
            serve_current(item)
            raise _moved_on(store.get(item["project_id"], item["id"]) or item)
    if previous_id and previous_id != item["id"]:
        # Stopped once the requests it still serves have drained.
        apps.retire({"id": previous_id, "project_id": item["project_id"]})
    return {"promoted": True}


def _run_preview(item: dict[str, Any]) -> dict[str, Any]:
    """A preview is never promoted: it runs at its own URL, and stops the older running
    preview of its branch; the project URL keeps serving production."""
    end_app_output(item["id"])
    running, replaced = deployments.run_preview(item)
    if not running:
        # Canceled (by a user, or because a newer preview of its branch runs): its app goes.
        engines.apps().stop(item)
        raise _moved_on(store.get(item["project_id"], item["id"]) or item)
    for previous_id in replaced:
        engines.apps().stop({"id": previous_id, "project_id": item["project_id"]})
    return {"promoted": False}


_switch_locks: dict[str, threading.RLock] = {}
_switch_guard = threading.Lock()


@contextmanager
def _switching(project_id: str) -> Iterator[None]:
    with _switch_guard:
        lock = _switch_locks.setdefault(project_id, threading.RLock())
    with lock:
        yield


def serve_current(item: dict[str, Any]) -> None:
    """Point the project's URL at its running deployment again (after a switch that did
    not happen, or a restart of that deployment's app at a new address)."""
    with _switching(item["project_id"]):
        project = project_store.get(item["workspace_id"], item["project_id"])
        current_id = project.get("current_deployment_id")
        current = store.get(item["project_id"], current_id) if current_id else None
        if current is not None and current["status"] == "running" and current.get("url"):
            engines.apps().promote({**current, "project_url": project.get("url")})


def mark_failed(item: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    error = message.get("error") or {}
    name = error.get("Error", "")
    cause = error.get("Cause")
    if not cause and item.get("step_error") == name:
        cause = item.get("step_cause")
    cause = cause or name or "The deploy workflow failed"
    if name == "States.Timeout":
        cause = "A deploy step did not finish in time (its worker stopped or hung)"
    end_app_output(item["id"])
    # The app goes first, so that whoever sees `failed` finds it already stopped. A
    # deployment this workflow promoted (its Promote failed after the write) keeps running.
    current = store.get(item["project_id"], item["id"]) or item
    if current["status"] != "running":
        engines.apps().stop(item)
    if name != MOVED_ON:
        deployments.fail(item, ERROR_CODES.get(name, "internal_error"), cause)
    return {"marked": True}


STEPS = {
    "deploy": deploy,
    "health_check": health_check,
    "promote": promote,
    "mark_failed": mark_failed,
}
