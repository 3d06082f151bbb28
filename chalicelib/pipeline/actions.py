"""What users ask of the pipeline: create a project (with the URL its runtime reserves),
deploy an upload or an archive, cancel, retry, redeploy, roll back, and stop everything when
a project is deleted. The status machine is in
deployments/; builds.py and workflow.py move deployments along."""

from __future__ import annotations

import email.parser
import email.policy
import shutil
import time
from typing import Any

from chalicelib.aws import objects
from chalicelib.core import ids
from chalicelib.core.errors import BadRequest, InvalidState, PayloadTooLarge, ValidationFailed
from chalicelib.core.log import logger
from chalicelib.core.models import Project, ProjectCreate
from chalicelib.core.settings import get_settings
from chalicelib.deployments import env as deployment_env
from chalicelib.deployments import service as deployments
from chalicelib.deployments import uploads
from chalicelib.deployments.models import (
    Deployment,
    DeploymentCreate,
    RedeployRequest,
    RollbackRequest,
)
from chalicelib.deployments.status import ACTIVE
from chalicelib.git import remote
from chalicelib.git.refs import BadRef, branch_of, check_ref, redact
from chalicelib.limits import quotas
from chalicelib.pipeline import builds, engines, workflow
from chalicelib.projects import service as projects
from chalicelib.projects.service import ProjectDeleted
from chalicelib.store import deployments as store
from chalicelib.store import hooks as hook_store
from chalicelib.store import projects as project_store

# Inherited by a deployment made from another one's artifact: it is not rebuilt.
BUILT_FIELDS = ("artifact_key", "plan", "framework", "build_method", "image_tag")
# Inherited by a retry, which builds the same source again.
SOURCE_FIELDS = ("git_sha", "git_branch", "environment")
# Single flight: the same commit of a project asked for again within this window of the
# first ask (pushes, hooks, API calls) gets the deployment the first ask made.
FLIGHT_WINDOW_S = 60


def _pending(
    project: dict[str, Any], source: dict[str, Any], note: str | None, source_key: str, **extra
) -> dict[str, Any]:
    item = deployments.new_item(project, "pending", source, note, source_key=source_key, **extra)
    item["env_key"] = deployment_env.snapshot_env(project, item["id"], item["environment"])
    return item


def _queue(project: dict[str, Any], item: dict[str, Any], message: str, upload_id=None):
    deployments.create(project, item, message, upload_id)
    try:
        builds.enqueue(item)
    except Exception:
        # Recorded but not queued: the sweeper re-enqueues pending deployments.
        logger().exception("Could not enqueue a build", extra={"deployment_id": item["id"]})
    return deployments.to_model(item)


def _admit(workspace_id: str, tier: str, needs_build: bool) -> None:
    """The last checks before a deployment is recorded: room in the builds queue, build
    minutes left (for one that builds), and one of today's deployments, which is counted
    here and not given back."""
    if needs_build:
        builds.ensure_capacity()
        quotas.check_build_minutes(workspace_id, tier)
    quotas.reserve_deployment(workspace_id, tier)


def deploy_upload(
    workspace_id: str, tier: str, project_id: str, body: DeploymentCreate
) -> Deployment:
    project = project_store.get(workspace_id, project_id)
    if body.git is not None:
        return deploy_git(workspace_id, tier, project, body.git.ref, body.note, "api")
    assert body.upload_id is not None
    upload = uploads.verified(project_id, body.upload_id)
    _admit(workspace_id, tier, needs_build=True)
    item = _pending(
        project, {"type": "upload", "upload_id": upload["id"]}, body.note, upload["key"]
    )
    return _queue(project, item, f"from upload {upload['id']}", upload["id"])


def deploy_archive(
    workspace_id: str, tier: str, project_id: str, content_type: str, raw: bytes
) -> Deployment:
    """`POST .../deploy`: a multipart form whose `archive` field is the .tar.gz."""
    project = project_store.get(workspace_id, project_id)
    limit = get_settings().deploy_max_bytes
    hint = (
        f"Archives above {limit} bytes go through uploads: POST /v1/projects/{project_id}/uploads, "
        "send the file to the presigned URL, then POST .../deployments with its upload_id"
    )
    # The form's own framing adds a little to the archive: allow for it before parsing.
    if len(raw) > limit + 64 * 1024:
        raise PayloadTooLarge(hint, {"max_bytes": limit})
    fields = parse_multipart(content_type, raw)
    archive = fields.get("archive")
    if archive is None:
        raise ValidationFailed({"archive": ["A file field named 'archive' is required"]})
    if len(archive) > limit:
        raise PayloadTooLarge(hint, {"max_bytes": limit})
    unknown = sorted(set(fields) - {"archive", "note"})
    if unknown:
        raise ValidationFailed({name: ["Unknown field"] for name in unknown})
    note = fields.get("note", b"").decode("utf-8", "replace") or None
    if note is not None and len(note) > 1000:
        raise ValidationFailed({"note": ["At most 1000 characters"]})
    _admit(workspace_id, tier, needs_build=True)
    key = uploads.store_direct(project_id, archive)
    item = _pending(project, {"type": "upload"}, note, key)
    return _queue(project, item, "from an archive sent to /deploy")


def deploy_git(
    workspace_id: str,
    tier: str,
    project: dict[str, Any],
    ref: str,
    note: str | None,
    trigger: str,
    pushed: remote.Resolved | None = None,
    message: str | None = None,
) -> Deployment:
    """Deploy a ref of the project's repository: resolved to its commit here (a push gives
    it: `pushed`), built from a shallow clone of exactly that commit. A branch other than
    `git.branch` makes a preview. A ref that can't be resolved still makes a deployment,
    failed with build_failed and a log line saying why; the same commit asked for twice
    within a minute makes one deployment (single flight)."""
    git = project.get("git")
    if not git:
        # A well-formed request this project can't serve: its state, not the body.
        raise InvalidState("This project has no git repository: PATCH it with git.repository first")
    try:
        check_ref(ref)
    except BadRef as error:
        raise ValidationFailed({"git.ref": [str(error)]}) from None
    failure = None
    resolved = pushed
    if resolved is None:
        try:
            resolved = remote.resolve(projects.clone_url(project), ref)
        except (remote.NoSuchRef, remote.Unreachable) as error:
            failure = redact(str(error))
    branch = resolved.branch if resolved else branch_of(ref) or None
    environment = "preview" if branch and branch != git["branch"] else "production"
    source = {
        "type": "git",
        "ref": ref,
        "sha": resolved.sha if resolved else None,
        "branch": branch,
        "message": message,
        "trigger": trigger,
    }
    fields = {"environment": environment, "git_branch": branch}
    if resolved is None:
        _admit(workspace_id, tier, needs_build=False)
        item = _pending(project, source, note, "git", **fields)
        deployments.create(project, item, f"from git ref {ref}")
        deployments.fail(item, "build_failed", f"Cannot resolve '{ref}': {failure}")
        return deployments.to_model(store.get(project["id"], item["id"]) or item)
    sha = resolved.sha
    # The window runs from the first ask, not from the clock's minute: two asks a second
    # apart on either side of a minute's end are one flight too.
    flight = f"commit#{project['id']}#{sha}"
    if (taken := hook_store.claim(flight, FLIGHT_WINDOW_S)) is not None:
        return _same_flight(project, flight, taken)
    try:
        _admit(workspace_id, tier, needs_build=True)
        item = _pending(project, source, note, f"git:{sha}", git_sha=sha, **fields)
        made = _queue(project, item, f"from git {ref} at {sha[:12]}")
    except Exception:
        hook_store.release(flight)
        raise
    hook_store.record(flight, {"deployment_id": item["id"]})
    return made


def _same_flight(project: dict[str, Any], flight: str, taken: dict[str, Any]) -> Deployment:
    """The deployment the first ask of this commit made (it may still be recording it)."""
    deadline = time.monotonic() + 5
    while not taken.get("deployment_id") and time.monotonic() < deadline:
        time.sleep(0.1)
        taken = hook_store.claim_of(flight) or {}
    if not taken.get("deployment_id"):
        raise InvalidState("A deployment of this commit is being created; retry in a moment")
    return deployments.to_model(store.get(project["id"], taken["deployment_id"]) or {})


def rebuild_latest_upload(workspace_id: str, tier: str, project: dict[str, Any]) -> Deployment:
    """Build the project's latest uploaded archive again (a deploy hook of a project
    without git), with the current production env."""
    latest = store.latest_upload(project["id"])
    if latest is None:
        raise InvalidState("This project has no git repository and no upload to rebuild")
    _admit(workspace_id, tier, needs_build=True)
    source = {"type": "upload", "upload_id": latest["source"].get("upload_id")}
    item = _pending(project, source, None, latest["source_key"])
    return _queue(project, item, f"rebuild of #{latest['number']}'s upload")


def stop_preview(project: dict[str, Any], branch: str) -> int:
    """Stop a branch's previews (its push deleted the branch): the running one is stopped,
    one still in the pipeline canceled. Returns how many."""
    stopped = 0
    for item in store.previews_of_branch(project["id"], branch):
        if item["status"] in ACTIVE:
            moved = deployments.move(item, "canceled", f"Canceled: the branch {branch} was deleted")
        elif item["status"] == "running":
            moved = deployments.move(
                item,
                "stopped",
                f"Stopped: the branch {branch} was deleted",
                {"running_preview": None},
            )
        else:
            moved = None
        if moved is not None:
            stop_work(item)
            stopped += 1
    return stopped


def parse_multipart(content_type: str, raw: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body, by name (stdlib email parser)."""
    if (
        not content_type.lower().startswith("multipart/form-data")
        or "boundary=" not in content_type
    ):
        raise BadRequest("Send multipart/form-data with a boundary and a file field 'archive'")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        raise BadRequest("The multipart body could not be parsed")
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name and name not in fields:
            fields[name] = part.get_payload(decode=True) or b""
    return fields


def cancel(workspace_id: str, project_id: str, deployment_id: str) -> Deployment:
    while True:
        item = deployments.item_of(workspace_id, project_id, deployment_id)
        deployments.require_status(item, ACTIVE, "cancel")
        moved = deployments.move(item, "canceled", "Canceled")
        if moved is not None:
            stop_work(item)
            return deployments.to_model(moved)


def stop_work(item: dict[str, Any]) -> None:
    """Stop whatever a deployment had running when it left `item['status']`."""
    status = item["status"]
    if status == "building":
        builds.cancel_build(item)
    if status in ("built", "deploying"):
        workflow.stop(item, "The deployment was canceled or timed out")
    if status in ("deploying", "running"):
        workflow.end_app_output(item["id"])
        engines.apps().stop(item)


def retry(workspace_id: str, tier: str, project_id: str, deployment_id: str) -> Deployment:
    old = deployments.item_of(workspace_id, project_id, deployment_id)
    deployments.require_status(old, ("failed", "canceled"), "retry")
    project = project_store.get(workspace_id, project_id)
    source = {"type": "retry", "deployment_id": old["id"]}
    note = old.get("note")
    if old["source"].get("type") == "git" and not old.get("git_sha"):
        # Its ref never resolved: resolve it again.
        return deploy_git(workspace_id, tier, project, old["source"]["ref"], note, "api")
    _admit(workspace_id, tier, needs_build=bool(old.get("source_key")))
    if old.get("source_key"):
        inherited = {name: old[name] for name in SOURCE_FIELDS if name in old}
        item = _pending(project, source, note, old["source_key"], retry_of=old["id"], **inherited)
        return _queue(project, item, f"retry of #{old['number']}")
    # A redeploy or rollback: the same artifact and environment again, no build.
    fields = {name: old[name] for name in BUILT_FIELDS if name in old}
    item = deployments.new_item(
        project, "deploying", source, note, retry_of=old["id"], env_key=old["env_key"], **fields
    )
    return _deploy_built(project, item, f"retry of #{old['number']}")


def _deploy_built(project: dict[str, Any], item: dict[str, Any], message: str) -> Deployment:
    """Record a deployment created `deploying` (its workflow starts on that: workflow.py)."""
    deployments.create(project, item, message)
    return deployments.to_model(store.get(item["project_id"], item["id"]) or item)


def redeploy(workspace_id: str, tier: str, project_id: str, body: RedeployRequest) -> Deployment:
    project = project_store.get(workspace_id, project_id)
    base = None
    if project.get("current_deployment_id"):
        base = store.get(project_id, project["current_deployment_id"])
    if base is None or not base.get("artifact_key"):
        base = store.latest_with_artifact(project_id)
    if base is None:
        raise InvalidState("Nothing was ever built for this project: deploy an upload first")
    _admit(workspace_id, tier, needs_build=False)
    fields = {name: base[name] for name in BUILT_FIELDS if name in base}
    item = deployments.new_item(
        project, "deploying", {"type": "redeploy", "deployment_id": base["id"]}, body.note, **fields
    )
    item["env_key"] = deployment_env.snapshot_env(project, item["id"])
    return _deploy_built(project, item, f"redeploy of #{base['number']} with the current env")


def rollback(workspace_id: str, tier: str, project_id: str, body: RollbackRequest) -> Deployment:
    project = project_store.get(workspace_id, project_id)
    target = deployments.item_of(workspace_id, project_id, body.deployment_id)
    if not target.get("artifact_key"):
        raise InvalidState(
            f"Deployment #{target['number']} was never built, so there is nothing to roll back to"
        )
    if target.get("environment") == "preview":
        # Its env snapshot holds the preview's variables, not production's.
        sha = (target.get("source") or {}).get("sha")
        commit = f'its commit ({{"git": {{"ref": "{sha}"}}}})' if sha else "its commit"
        raise InvalidState(
            f"Deployment #{target['number']} is a preview: a rollback returns to an earlier "
            f"production deployment. To put its code in production, deploy {commit} or "
            "merge its branch",
            {"environment": "preview", "git_sha": sha},
        )
    _admit(workspace_id, tier, needs_build=False)
    return rollback_to(project, target, body.note)


def rollback_to(project: dict[str, Any], target: dict[str, Any], note: str | None) -> Deployment:
    """A new `rollback` deployment of `target`'s artifact and env snapshot."""
    fields = {name: target[name] for name in BUILT_FIELDS if name in target}
    item = deployments.new_item(
        project,
        "deploying",
        {"type": "rollback", "deployment_id": target["id"]},
        note,
        env_key=target["env_key"],
        **fields,
    )
    return _deploy_built(project, item, f"rollback to #{target['number']} and its env")


def create_project(workspace_id: str, body: ProjectCreate, tier: str) -> Project:
    """A project with its stable URL, reserved before it exists (None where the runtime
    knows it only at the first promote)."""
    project_id = ids.new_id("prj")
    url = engines.apps().reserve_url(project_id)
    return projects.create(workspace_id, body, tier, project_id=project_id, url=url)


def project_deleted(deleted: ProjectDeleted) -> None:
    """Stop everything a deleted project runs now; its data goes in the background."""
    project = deleted.project
    for item in store.all_of_project(project["id"]):
        if item["status"] in ACTIVE:
            moved = deployments.move(item, "canceled", "Canceled: the project was deleted")
        elif item["status"] == "running":
            moved = deployments.move(item, "stopped", "Stopped: the project was deleted")
        else:
            moved = None
        if moved is not None:
            stop_work(item)
    engines.apps().release_url(project["id"])
    builds.queues.send(builds.QUEUE, {"kind": "purge_project", "project_id": project["id"]})


def purge_project(project_id: str) -> None:
    """Remove a deleted project's deployments, logs, releases, uploads and objects."""
    for deployment_id in deployments.purge(project_id):
        shutil.rmtree(engines.app_dir(deployment_id), ignore_errors=True)
    hook_store.delete_hooks_of_project(project_id)
    for prefix in ("uploads", "clones", "env", "artifacts"):
        objects.delete_prefix(f"{prefix}/{project_id}/")
