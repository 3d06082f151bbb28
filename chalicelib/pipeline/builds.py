"""The builds queue and its consumer: a `pending` deployment starts building only while
its workspace is under the tier's concurrent-build limit, otherwise it waits.

Slots are a set of deployment ids per workspace (store/deployments.py), taken with a
conditional write and given back whenever a deployment leaves pending/building, whatever
the way (built, failed, canceled, timed out). Giving one back re-enqueues the workspace's
oldest waiting deployments. The sweeper re-enqueues anything left pending for long,
so a lost message delays a build but never strands it.

A message delivered twice starts one build: the consumer moves the deployment
pending -> building with a conditional write, and only the writer that wins builds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalicelib.archive.artifacts import artifact_key
from chalicelib.aws import queues
from chalicelib.builders.codebuild import CLONE_STEP, CodeBuildBuilder, parse_state_change
from chalicelib.buildplan.model import BuildPlan
from chalicelib.core.clock import parse_rfc3339
from chalicelib.core.errors import BuildQueueFull
from chalicelib.core.settings import get_settings
from chalicelib.core.tiers import TIERS
from chalicelib.deployments import env as deployment_env
from chalicelib.deployments import logs as log_lines
from chalicelib.deployments import service as deployments
from chalicelib.deployments.service import StatusChanged
from chalicelib.deployments.status import HOLDS_SLOT
from chalicelib.limits import quotas
from chalicelib.pipeline import engines
from chalicelib.ports import BuildEngine, BuildJob, BuildOutcome
from chalicelib.projects import service as projects
from chalicelib.store import build_slots as slot_store
from chalicelib.store import deployments as store
from chalicelib.store import projects as project_store
from chalicelib.store import workspaces as workspace_store

QUEUE = "builds"
ERROR_CODES = ("invalid_archive", "build_failed", "timed_out", "internal_error")
RETRY_AFTER_S = 30


def ensure_capacity() -> None:
    """503 build_queue_full while the queue holds more than `build_queue_max` messages."""
    if queues.depth(QUEUE) >= get_settings().build_queue_max:
        raise BuildQueueFull(RETRY_AFTER_S)


def enqueue(item: dict[str, Any], delay_s: int = 0) -> None:
    queues.send(
        QUEUE,
        {"kind": "build", "project_id": item["project_id"], "deployment_id": item["id"]},
        delay_s,
    )


def concurrent_builds(workspace_id: str) -> int:
    workspace = workspace_store.get_workspace(workspace_id)
    tier = TIERS.get(workspace["tier"] if workspace else "free", TIERS["free"])
    return tier.concurrent_builds


def start(project_id: str, deployment_id: str) -> None:
    item = store.get(project_id, deployment_id)
    if item is None or item["status"] != "pending":
        return
    workspace_id = item["workspace_id"]
    limit = concurrent_builds(workspace_id)
    if not slot_store.acquire(workspace_id, deployment_id, limit):
        if not item.get("waiting_logged"):
            marked = store.set_fields(
                project_id, deployment_id, {"waiting_logged": True}, ("pending",)
            )
            if marked is not None:
                deployments.log(
                    item,
                    "system",
                    f"Waiting for a build slot: all {limit} concurrent builds of this "
                    "workspace's plan are in use",
                )
        return
    engine = engines.build_engine()
    moved = deployments.move(
        item, "building", f"Building ({engine.method})", {"build_method": engine.method}
    )
    if moved is None:
        # Someone else moved it first: a duplicate message (its build holds the slot) or a
        # cancel (whose release may have come before this slot was taken: give it back).
        current = store.get(project_id, deployment_id)
        if current is None or current["status"] not in ("building",):
            slot_store.release(workspace_id, deployment_id)
        return
    _start_build(engine, moved)


def _start_build(engine: BuildEngine, item: dict[str, Any]) -> None:
    """Hand a `building` deployment to the build engine; its outcome comes back to
    build_finished (or, from CodeBuild, through codebuild_state_changed)."""
    sink = log_lines.BufferedLog(item["project_id"], item["id"])

    def finished(outcome: BuildOutcome) -> None:
        sink.close()
        build_finished(item, outcome)

    facts = engine.start(job_for(item), sink, finished)
    if facts:
        store.set_fields(item["project_id"], item["id"], facts, ("building",))
        sink.close()


def job_for(item: dict[str, Any]) -> BuildJob:
    project = project_store.get(item["workspace_id"], item["project_id"])
    git = None
    if item.get("git_sha"):
        git = {
            "url": projects.clone_url(project),
            "sha": item["git_sha"],
            "display": project["git"]["repository"],
        }
    env, secret_keys = deployment_env.snapshot_of(item)
    return BuildJob(
        deployment_id=item["id"],
        project_id=item["project_id"],
        workspace_id=item["workspace_id"],
        source_key=item["source_key"],
        project_runtime=project.get("runtime", "auto"),
        build=project.get("build", {}),
        run=project.get("run", {}),
        env=env,
        timeout_s=get_settings().build_timeout_s,
        git=git,
        secret_keys=tuple(secret_keys),
    )


def cancel_build(item: dict[str, Any]) -> None:
    """Stop a deployment's build, wherever it runs; nothing if it has none."""
    engines.build_engine().cancel(item["id"], item.get("build_id"))


def release_slot(change: StatusChanged) -> None:
    """A deployment that leaves pending/building, whatever the way (built, failed,
    canceled, timed out), gives back its build slot."""
    if change.before in HOLDS_SLOT and change.after["status"] not in HOLDS_SLOT:
        slot_freed(change.after)


def slot_freed(item: dict[str, Any]) -> None:
    """Give back the deployment's build slot and wake the workspace's waiting builds."""
    workspace_id = item["workspace_id"]
    slot_store.release(workspace_id, item["id"])
    for waiting in store.pending_of_workspace(workspace_id, concurrent_builds(workspace_id)):
        enqueue(waiting)


def build_finished(item: dict[str, Any], outcome: Any) -> None:
    """A build engine's result (a BuildOutcome, or the CodeBuild state change made into
    one): record it. A deployment that built goes on to the deploy workflow (workflow.py
    follows the move to `built`)."""
    _count_build_time(item)
    if not outcome.ok:
        # A canceled build's outcome finds its deployment canceled already: ignored.
        code = outcome.error_code if outcome.error_code in ERROR_CODES else "internal_error"
        message = outcome.error_message or "the build failed"
        deployments.fail(item, code, message, only_from=("building",))
        return
    plan = outcome.plan
    # On AWS the build also pushed an image (image_tag, set when it started); locally the
    # artifact is what runs.
    fields: dict[str, Any] = {
        "artifact_key": outcome.artifact_key,
        "image_tag": item.get("image_tag") or outcome.artifact_key,
    }
    if plan is not None:
        fields["plan"] = plan.model_dump(mode="json")
        fields["framework"] = plan.framework
    if outcome.source:
        fields["source"] = {**item["source"], **outcome.source}
    deployments.move(item, "built", "Built", fields)


def _count_build_time(item: dict[str, Any]) -> None:
    """Add the build's wall-clock time to the month's build minutes, once per deployment
    however many times its end is reported."""

    seconds = (datetime.now(UTC) - parse_rfc3339(item["status_at"])).total_seconds()
    if store.claim_build_seconds(item["project_id"], item["id"], round(seconds, 3)):
        quotas.record_build_seconds(item["workspace_id"], seconds)


def codebuild_state_changed(event: dict[str, Any]) -> None:
    """An EventBridge "CodeBuild Build State Change". Events can come late, twice or out
    of order: each one is a conditional move, so one that no longer fits is ignored. The
    clone build of a git source that succeeded goes on through the builds queue (`cloned`):
    its consumer is the one function that checks archives and starts builds."""
    change = parse_state_change(event)
    if change.deployment_id and change.status in ("built", "failed"):
        # The build has ended: the secrets it was given have no further use.
        CodeBuildBuilder().forget_secrets(change.deployment_id, change.step)
    item = store.find(change.deployment_id) if change.deployment_id else None
    if item is None or item.get("build_id") != change.build_id:
        return
    if item["status"] != "building":
        # Its build's end is known already (a duplicate, or news older than the end).
        return
    if change.status == "built" and change.step == CLONE_STEP:
        queues.send(
            QUEUE,
            {
                "kind": "cloned",
                "project_id": item["project_id"],
                "deployment_id": item["id"],
                "build_id": change.build_id,
            },
        )
    elif change.status == "built":
        plan = BuildPlan.model_validate(item["plan"])
        key = artifact_key(item["project_id"], item["id"])
        build_finished(item, BuildOutcome(True, plan, key, None, None))
    elif change.status == "failed":
        outcome = BuildOutcome.failed(
            change.error_code or "build_failed",
            change.error_message or "the CodeBuild build failed",
        )
        build_finished(item, outcome)


def cloned(project_id: str, deployment_id: str, build_id: str) -> None:
    """The clone build of a git deployment succeeded: build what it cloned as an upload
    (engines.py `CodeBuildEngine.cloned`). A message for a clone that is no longer the
    deployment's build (delivered twice, or the deployment canceled) does nothing."""
    item = store.get(project_id, deployment_id)
    if (
        item is None
        or item["status"] != "building"
        or item.get("build_id") != build_id
        or item.get("clone_build_id") != build_id
    ):
        return
    engine = engines.CodeBuildEngine()
    sink = log_lines.BufferedLog(project_id, deployment_id)

    def finished(outcome: BuildOutcome) -> None:
        sink.close()
        build_finished(item, outcome)

    facts, learnt = engine.cloned(job_for(item), sink, finished)
    if facts:
        facts["source"] = {**item["source"], **learnt}
        if store.set_fields(project_id, deployment_id, facts, ("building",)) is None:
            # Canceled while the build was being started: it has nothing left to build for.
            engine.cancel(deployment_id, facts["build_id"])
        sink.close()
