"""Deployments: creating, moving and reading them by the status table (status.py).
Storage is in store/deployments.py; what moves a deployment through the pipeline is in
pipeline/builds.py (the builds queue) and pipeline/workflow.py (the deploy workflow).

Each change is one conditional write that names the statuses it may come from, so a late,
repeated or concurrent event can never move a deployment backwards. Every change appends a
`system` log line and, once committed, is published as a `StatusChanged` fact
(core/reactions.py): the project's status, build slots and the deploy workflow follow it
there, without this module calling them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from chalicelib.core import ids, reactions
from chalicelib.core.clock import now_iso, precise
from chalicelib.core.errors import InvalidState, NotFound
from chalicelib.core.pagination import Page
from chalicelib.deployments import logs as log_lines
from chalicelib.deployments.env import masker_of
from chalicelib.deployments.models import Deployment, DeploymentSource, Release
from chalicelib.deployments.status import ENDED, INDEXED, NAMED_ONLY, TRANSITIONS
from chalicelib.store import deployments as store
from chalicelib.store import logs as log_store
from chalicelib.store import projects as project_store
from chalicelib.store.errors import Missing

LIST_NAME = "deployments"


@dataclass(frozen=True)
class StatusChanged:
    """A deployment's committed change of status: `before` is None for a new deployment
    (then `after` is the item as created), and `after` is the item as written."""

    before: str | None
    after: dict[str, Any]


def to_model(item: dict[str, Any]) -> Deployment:
    return Deployment(
        id=item["id"],
        project_id=item["project_id"],
        number=item["number"],
        status=item["status"],
        environment=item.get("environment", "production"),
        source=DeploymentSource(**item["source"]),
        retry_of=item.get("retry_of"),
        build_method=item.get("build_method"),
        framework=item.get("framework"),
        image_tag=item.get("image_tag"),
        url=item.get("url"),
        release_id=item.get("release_id"),
        runtime=item.get("runtime"),
        error_code=item.get("error_code"),
        error_message=item.get("error_message"),
        note=item.get("note"),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
        started_at=item.get("started_at"),
        finished_at=item.get("finished_at"),
    )


def item_of(workspace_id: str, project_id: str, deployment_id: str) -> dict[str, Any]:
    """A deployment of a project of this workspace, or 404 (never a hint of another's)."""
    _, item = store.get_with_project(workspace_id, project_id, deployment_id)
    if item is None or item["workspace_id"] != workspace_id:
        raise NotFound("Deployment")
    return item


def get(workspace_id: str, project_id: str, deployment_id: str) -> Deployment:
    return to_model(item_of(workspace_id, project_id, deployment_id))


def list_deployments(
    workspace_id: str,
    project_id: str,
    limit: int,
    start: dict | None,
    status: str | None,
    environment: str | None = None,
) -> Page:
    project_store.get(workspace_id, project_id)
    items, next_key = store.list_page(project_id, limit, start, status, environment)
    name = list_name(project_id, status, environment)
    return Page([to_model(i) for i in items], next_key, name, workspace_id)


def list_name(project_id: str, status: str | None, environment: str | None = None) -> str:
    name = f"{LIST_NAME}:{project_id}:{status or ''}"
    return name + f":{environment}" if environment else name


def list_releases(workspace_id: str, project_id: str, limit: int, start: dict | None) -> Page:
    project_store.get(workspace_id, project_id)
    items, next_key = store.list_releases(project_id, limit, start)
    models = [
        Release(
            id=i["id"],
            version=i["version"],
            deployment_id=i["deployment_id"],
            created_at=i["created_at"],
        )
        for i in items
    ]
    return Page(models, next_key, f"releases:{project_id}", workspace_id)


# Creating


def new_item(
    project: dict[str, Any],
    status: str,
    source: dict[str, Any],
    note: str | None,
    **fields: Any,
) -> dict[str, Any]:
    now = now_iso()
    deployment_id = ids.new_id("dep")
    environment = fields.pop("environment", "production")
    item = {
        "id": deployment_id,
        "project_id": project["id"],
        "workspace_id": project["workspace_id"],
        "environment": environment,
        "project_environment": f"{project['id']}#{environment}",
        "status": status,
        "status_at": precise(),
        "active_status": status,
        "source": {k: v for k, v in source.items() if v is not None},
        "note": note,
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    branch = item.get("git_branch")
    if environment == "preview" and branch:
        item["preview_branch"] = f"{project['id']}#{branch}"
    if status == "pending":
        item["pending_workspace_id"] = project["workspace_id"]
    else:
        item["started_at"] = now
    return item


def create(
    project: dict[str, Any], item: dict[str, Any], message: str, upload_id: str | None = None
) -> dict[str, Any]:
    """Number and store a new deployment (with the single use of its upload, if any).
    The number comes from `project` as the caller read it; if its counter has moved since,
    the project is read again."""
    fresh = project
    while True:
        count = fresh.get("deployment_count", 0)
        item["number"] = count + 1
        item["log_seq"] = 1
        item["log_reserved_ms"] = store.now_ms()
        try:
            store.create(item, upload_id, count)
            break
        except store.CounterMoved:
            fresh = project_store.get(project["workspace_id"], project["id"])
    _transition_line(item, "system", f"Deployment #{item['number']} created ({message})")
    reactions.publish(StatusChanged(None, item))
    return item


# Moving


def move(
    item: dict[str, Any],
    to: str,
    message: str,
    fields: dict[str, Any] | None = None,
    phase: str = "system",
    only_from: tuple[str, ...] | None = None,
) -> dict[str, Any] | None:
    """Change a deployment's status if the status machine allows it from where it is (and,
    with `only_from`, only from those statuses); the new item, or None if it had moved on
    (then nothing is written)."""
    now = now_iso()
    changes = dict(fields or {})
    if to in ("failed", "canceled"):
        changes.setdefault("finished_at", now)
    if to == "building":
        changes.setdefault("started_at", now)
    allowed = tuple(
        s
        for s in TRANSITIONS[to]
        if (s in only_from if only_from is not None else s not in NAMED_ONLY.get(to, ()))
    )
    if changes.get("error_message"):
        changes["error_message"] = masker_of(item)(changes["error_message"])
    moved = store.transition(
        item["project_id"], item["id"], to, allowed, now, changes, indexed=to in INDEXED
    )
    if moved is None:
        return None
    _transition_line(moved, phase, message)
    # Where it came from is one of `allowed`: the condition held.
    before = item["status"] if item.get("status") in allowed else allowed[0]
    reactions.publish(StatusChanged(before, moved))
    return moved


def follow_project_status(change: StatusChanged) -> None:
    """Keep the project's status in step with its deployments' changes while none of them
    runs (the move of one to running sets the project running in the same transaction): a
    new deployment makes it deploying, a failed one failed, a canceled one idle."""
    status = change.after["status"]
    if change.before is None:
        status = "deploying"
    elif status == "canceled":
        status = "idle"
    elif status != "failed":
        return
    project_store.set_status(
        change.after["workspace_id"],
        change.after["project_id"],
        status,
        change.after["updated_at"],
        True,
    )


def _transition_line(item: dict[str, Any], phase: str, message: str) -> None:
    """The transition's own line, under the seq its conditional write reserved."""
    line = log_lines.line(masker_of(item), phase, message)
    log_store.put_line(item["id"], {**line, "seq": item["log_seq"]})


def log(item: dict[str, Any], phase: str, message: str) -> None:
    """A line that is not a status change."""
    log_lines.append(item["project_id"], item["id"], [(phase, message)])


def fail(
    item: dict[str, Any], code: str, message: str, only_from: tuple[str, ...] | None = None
) -> dict[str, Any] | None:
    return move(
        item,
        "failed",
        f"Failed ({code}): {message}",
        {"error_code": code, "error_message": message},
        only_from=only_from,
    )


def promote(item: dict[str, Any], project_url: str | None = None) -> tuple[bool, str | None]:
    """Make a `deploying` deployment the project's running one, stopping the previous, with
    the project's URL `project_url` (default: the deployment's own): (True, the id of the
    one it replaced) once it is running, (False, None) if it can no longer be."""
    while True:
        try:
            project, current = store.get_with_project(
                item["workspace_id"], item["project_id"], item["id"]
            )
        except Missing:
            project, current = None, store.get(item["project_id"], item["id"])
        if current is None or current["status"] != "deploying":
            return current is not None and current["status"] == "running", None
        if project is None:
            raise Missing("Project")
        previous_id = project.get("current_deployment_id")
        previous = store.get(current["project_id"], previous_id) if previous_id else None
        if previous is not None and previous["status"] != "running":
            previous = None
        now = now_iso()
        release = {
            "id": ids.new_id("rel"),
            "project_id": current["project_id"],
            "deployment_id": current["id"],
            "created_at": now,
        }
        running_line = f"Running at {current.get('url')}"
        lines = {current["id"]: log_lines.line(masker_of(current), "system", running_line)}
        if previous is not None:
            lines[previous["id"]] = log_lines.line(
                masker_of(previous),
                "system",
                f"Stopped: replaced by deployment #{current['number']}",
            )
        url = project_url or current.get("url")
        if store.promote(current, previous, project, release, now, url):
            changed = (("deploying", "running", current), ("running", "stopped", previous))
            for before, to, moved in changed:
                if moved is not None:
                    seq = moved["log_seq"] + 1
                    log_store.put_line(moved["id"], {**lines[moved["id"]], "seq": seq})
                    after = {**moved, "status": to, "log_seq": seq, "updated_at": now}
                    reactions.publish(StatusChanged(before, after))
            return True, previous_id
        time.sleep(0.05)


def run_preview(item: dict[str, Any]) -> tuple[bool, list[str]]:
    """Make a `deploying` preview `running` at its own URL, stopping the older running
    previews of its branch in the same transaction; the project and its production
    deployment are not touched. A preview older than one of its branch that runs already
    is canceled instead. (True, the ids it stopped) once it runs, (False, []) if it can't."""
    while True:
        current = store.get(item["project_id"], item["id"])
        if current is None or current["status"] != "deploying":
            return current is not None and current["status"] == "running", []
        branch = current.get("git_branch")
        others = [
            other
            for other in (store.previews_of_branch(current["project_id"], branch) if branch else [])
            if other["status"] == "running" and other["id"] != current["id"]
        ]
        newer = [other for other in others if other["number"] > current["number"]]
        if newer:
            # A newer push of the branch finished first: this older one never replaces it.
            move(
                current,
                "canceled",
                f"Canceled: preview #{newer[0]['number']} of {branch} is newer and runs already",
                only_from=("deploying",),
            )
            continue
        older = others
        now = now_iso()
        lines = {
            current["id"]: log_lines.line(
                masker_of(current), "system", f"Preview running at {current.get('url')}"
            )
        }
        for other in older:
            lines[other["id"]] = log_lines.line(
                masker_of(other),
                "system",
                f"Stopped: replaced by preview #{current['number']} of {branch}",
            )
        if store.run_preview(current, older, now):
            changed = [("deploying", "running", current)] + [
                ("running", "stopped", other) for other in older
            ]
            for before, to, moved in changed:
                seq = moved["log_seq"] + 1
                log_store.put_line(moved["id"], {**lines[moved["id"]], "seq": seq})
                after = {**moved, "status": to, "log_seq": seq, "updated_at": now}
                reactions.publish(StatusChanged(before, after))
            return True, [other["id"] for other in older]
        time.sleep(0.05)


# Reading while it changes


def wait(workspace_id: str, project_id: str, deployment_id: str, timeout_s: int) -> Deployment:
    """The deployment as soon as it is running or has ended, or when the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        item = item_of(workspace_id, project_id, deployment_id)
        if item["status"] in ENDED or time.monotonic() >= deadline:
            return to_model(item)
        time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))


def require_status(item: dict[str, Any], allowed: tuple[str, ...], action: str) -> None:
    if item["status"] not in allowed:
        raise InvalidState(
            f"Cannot {action} a deployment that is {item['status']} "
            f"(allowed from: {', '.join(allowed)})",
            {"status": item["status"]},
        )


def purge(project_id: str) -> list[str]:
    """Delete a deleted project's deployments with their logs (a deployment's log first, so
    a purge that stops halfway leaves no log without its deployment), its releases and its
    upload records; returns the ids of the deployments removed."""
    removed = []
    for item in list(store.all_of_project(project_id)):
        log_store.delete_all(item["id"])
        store.delete(project_id, item["id"])
        removed.append(item["id"])
    store.purge_releases_and_uploads(project_id)
    return removed
