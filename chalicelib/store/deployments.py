"""Deployments and releases in DynamoDB (build slots: store/build_slots.py).

A deployment item lives in the partition of its project (sort key = its id, so a Query
lists newest first). Besides the contract's fields it carries:
- `log_seq`: the last log sequence number handed out (store/logs.py reserves from it);
- `active_status`: the status while it is one of pending/building/built/deploying/running,
  absent once it has ended: the sparse index `by_active_status` (range `status_at`) is how
  the sweeper finds stuck deployments, and the local stack the running ones, without a Scan;
- `pending_workspace_id`: set only while pending: the sparse index `by_pending_workspace`
  lists a workspace's waiting builds, oldest first, when a build slot frees;
- `project_status`: `<project_id>#<status>`, kept with every status change: the index
  `by_project_status` (range `id`) serves `?status=` newest first, reading only the
  deployments it returns (a filter over the project's partition reads every one it
  rejects: 250 Queries for a page of 1 running among 10,000).
- `project_environment` (`<project>#production|preview`): the index `by_environment` serves
  `?environment=` with a Query; `preview_branch` (`<project>#<branch>`, previews only): the
  index `by_preview_branch` finds a branch's previews; `running_preview` (set while a
  preview runs): the sparse index `by_running_preview` (range `created_at`) finds the
  previews the sweeper stops after 7 days without a push.

Every status change is one conditional write (`status IN (predecessors)`); promotion is one
transaction (new -> running, previous -> stopped, the project's pointer and the release),
so there is never a moment with two `running` deployments of a project. What a change
writes to its project or its upload comes as operations of their own stores
(store/projects.py, store/uploads.py); the statuses themselves are the domain's
(deployments/status.py).
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.aws.errors import cancellation_codes
from chalicelib.core import ids
from chalicelib.core.clock import precise
from chalicelib.store import projects as project_store
from chalicelib.store import uploads as upload_store
from chalicelib.store.dynamo import Table, is_condition_failure, put_op, transact, update_op
from chalicelib.store.errors import Taken

deployments = Table("deployments")
releases = Table("releases")


def _key(project_id: str, deployment_id: str) -> dict[str, str]:
    return {"project_id": project_id, "id": deployment_id}


def _project_status(project_id: str, status: str) -> str:
    return f"{project_id}#{status}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def create(item: dict[str, Any], upload_id: str | None, expected_count: int) -> None:
    """Write a new deployment numbered `expected_count + 1`, with log seq 1 reserved for
    its first line, in one transaction with the project's counter (optimistic: the count
    must not have moved) and, for an upload, the upload's single use. Raises CounterMoved
    when the counter moved, and Conflict when the upload was used already."""
    stored = {**item, "project_status": _project_status(item["project_id"], item["status"])}
    operations = [
        project_store.count_deployment_op(item["workspace_id"], item["project_id"], expected_count),
        put_op(deployments, stored, "attribute_not_exists(id)"),
    ]
    if upload_id is not None:
        operations.append(upload_store.use_op(item["project_id"], upload_id, item["id"]))
    try:
        transact(operations)
    except Exception as error:
        if not is_condition_failure(error):
            raise
        codes = cancellation_codes(error)
        if len(codes) > 2 and codes[2] == "ConditionalCheckFailed":
            raise Taken("This upload was already used by another deployment") from None
        raise CounterMoved() from None


class CounterMoved(Exception):
    """The project's deployment counter changed between read and write: read and retry."""


def get(project_id: str, deployment_id: str) -> dict[str, Any] | None:
    if not ids.could_be("dep", deployment_id):
        return None
    return deployments.get(_key(project_id, deployment_id))


def get_with_project(
    workspace_id: str, project_id: str, deployment_id: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The project of this workspace (or Missing) and its deployment (or None), read in
    one request."""
    if not ids.could_be("dep", deployment_id):
        return project_store.get(workspace_id, project_id), None
    return project_store.get_with(
        workspace_id, project_id, (deployments, _key(project_id, deployment_id))
    )


def find(deployment_id: str) -> dict[str, Any] | None:
    """A deployment by id alone (events that carry only the id: CodeBuild's)."""
    found = next(
        deployments.query_all("id = :id", {":id": deployment_id}, index="by_id"),
        None,
    )
    return get(found["project_id"], deployment_id) if found else None


def list_page(
    project_id: str,
    limit: int,
    start: dict | None,
    status: str | None,
    environment: str | None = None,
):
    """A page of a project's deployments, newest first. With `status`, from the index of
    that status (and, with `environment` too, only that environment's); with `environment`
    alone, from the index of that environment: a filtered page costs the same however many
    deployments the project has."""
    if status:
        names, filters, values = None, None, {":ps": _project_status(project_id, status)}
        if environment:
            names, filters = {"#env": "environment"}, "#env = :env"
            values[":env"] = environment
        return deployments.query_page(
            "project_status = :ps",
            values,
            limit,
            start_key=start,
            names=names,
            filter_expression=filters,
            index="by_project_status",
            key_of=lambda item: {**_page_key(item), "project_status": item["project_status"]},
        )
    if environment:
        return deployments.query_page(
            "project_environment = :pe",
            {":pe": f"{project_id}#{environment}"},
            limit,
            start_key=start,
            index="by_environment",
            key_of=_env_page_key,
        )
    return deployments.query_page(
        "project_id = :p", {":p": project_id}, limit, start_key=start, key_of=_page_key
    )


def _page_key(item: dict[str, Any]) -> dict[str, Any]:
    return _key(item["project_id"], item["id"])


def _env_page_key(item: dict[str, Any]) -> dict[str, Any]:
    return {**_page_key(item), "project_environment": item["project_environment"]}


def previews_of_branch(project_id: str, branch: str) -> list[dict[str, Any]]:
    """A branch's previews, newest first (the index `by_preview_branch`)."""
    found = deployments.query_all(
        "preview_branch = :b", {":b": f"{project_id}#{branch}"}, index="by_preview_branch"
    )
    return [full for item in found if (full := get(item["project_id"], item["id"]))]


def running_previews_since_before(before: str) -> list[dict[str, Any]]:
    """Running previews created before `before` (the sweeper's 7 days without a push)."""
    found = deployments.query_all(
        "running_preview = :r AND created_at < :before",
        {":r": RUNNING_PREVIEW, ":before": before},
        index="by_running_preview",
    )
    return list(found)


RUNNING_PREVIEW = "running"


def latest_with_artifact(project_id: str) -> dict[str, Any] | None:
    """The newest deployment that produced an artifact (what a redeploy reuses)."""
    found, _ = deployments.query_page(
        "project_id = :p",
        {":p": project_id},
        1,
        filter_expression="attribute_exists(artifact_key)",
        key_of=lambda item: _key(item["project_id"], item["id"]),
    )
    return found[0] if found else None


def latest_upload(project_id: str) -> dict[str, Any] | None:
    """The newest deployment built from an uploaded archive (what a deploy hook rebuilds
    for a project without git)."""
    found, _ = deployments.query_page(
        "project_id = :p",
        {":p": project_id, ":u": "uploads/"},
        1,
        filter_expression="begins_with(source_key, :u)",
        key_of=_page_key,
    )
    return found[0] if found else None


def all_of_project(project_id: str):
    return deployments.query_all("project_id = :p", {":p": project_id})


def transition(
    project_id: str,
    deployment_id: str,
    to: str,
    allowed_from: tuple[str, ...],
    now: str,
    fields: dict[str, Any] | None = None,
    remove: tuple[str, ...] = (),
    indexed: bool = False,
) -> dict[str, Any] | None:
    """Move a deployment to `to` if its status is one of `allowed_from`, setting `fields`,
    and reserve one log sequence number for the transition's own log line, all in one
    conditional UpdateItem; `indexed` keeps it in the `by_active_status` index under the new
    status (else it leaves the index). Returns the new item, or None when the condition failed (a
    late, repeated or concurrent event: ignored)."""
    names = {"#status": "status"}
    values: dict[str, Any] = {
        ":to": to,
        ":ps": _project_status(project_id, to),
        ":now": now,
        ":at": precise(),
        ":one": 1,
        ":ms": now_ms(),
    }
    sets = ["#status = :to", "project_status = :ps", "status_at = :at", "updated_at = :now"]
    sets.append("log_reserved_ms = :ms")
    removes = list(remove)
    if indexed:
        sets.append("active_status = :to")
    else:
        removes.append("active_status")
    if to != "pending":
        removes.append("pending_workspace_id")
    for i, (name, value) in enumerate((fields or {}).items()):
        names[f"#f{i}"] = name
        if value is None:
            removes.append(f"#f{i}")
        else:
            values[f":f{i}"] = value
            sets.append(f"#f{i} = :f{i}")
    expression = "SET " + ", ".join(sets) + " ADD log_seq :one"
    if removes:
        expression += " REMOVE " + ", ".join(dict.fromkeys(removes))
    return _update_in_status(project_id, deployment_id, expression, names, values, allowed_from)


def _update_in_status(
    project_id: str,
    deployment_id: str,
    expression: str,
    names: dict[str, str],
    values: dict[str, Any],
    statuses: tuple[str, ...],
) -> dict[str, Any] | None:
    """One update, made only while the status is one of `statuses`: the new item, or None
    if the deployment had moved on."""
    names = {**names, "#status": "status"}
    allowed = []
    for i, status in enumerate(statuses):
        values[f":a{i}"] = status
        allowed.append(f":a{i}")
    try:
        return deployments.update(
            _key(project_id, deployment_id),
            expression,
            f"#status IN ({', '.join(allowed)})",
            names,
            values,
        )
    except Exception as error:
        if is_condition_failure(error):
            return None
        raise


def set_fields(
    project_id: str, deployment_id: str, fields: dict[str, Any], when_status: tuple[str, ...]
) -> dict[str, Any] | None:
    """Record facts (a build id, an execution ARN) while the status is one of `when_status`."""
    names = {"#status": "status"}
    values: dict[str, Any] = {}
    sets = []
    for i, (name, value) in enumerate(fields.items()):
        names[f"#f{i}"] = name
        values[f":f{i}"] = value
        sets.append(f"#f{i} = :f{i}")
    return _update_in_status(
        project_id, deployment_id, "SET " + ", ".join(sets), names, values, when_status
    )


def claim_build_seconds(project_id: str, deployment_id: str, seconds: float) -> bool:
    """Record how long the build took, once: False if it was recorded already."""
    try:
        deployments.update(
            _key(project_id, deployment_id),
            "SET build_seconds = :s",
            "attribute_exists(id) AND attribute_not_exists(build_seconds)",
            values={":s": seconds},
        )
        return True
    except Exception as error:
        if is_condition_failure(error):
            return False
        raise


def promote(
    new: dict[str, Any],
    previous: dict[str, Any] | None,
    project: dict[str, Any],
    release: dict[str, Any],
    now: str,
    project_url: str | None,
) -> bool:
    """One transaction: `new` deploying -> running, `previous` running -> stopped, the
    project's pointer, status, url and release counter, and the release. Conditions pin
    every item to the state read by the caller, including each deployment's `log_seq`,
    whose next number is reserved for the change's log line (the caller writes it right
    after: readers wait for a reserved line). A concurrent change cancels the transaction;
    the caller re-reads and retries. Returns False when a condition failed."""
    ms = now_ms()
    operations = []
    changed = [(new, "running", "deploying")]
    if previous is not None:
        changed.append((previous, "stopped", "running"))
    for item, to, expected in changed:
        seq = item["log_seq"]
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":to": to,
            ":ps": _project_status(item["project_id"], to),
            ":expected": expected,
            ":now": now,
            ":seq": seq,
            ":next": seq + 1,
            ":ms": ms,
            ":at": precise(),
        }
        sets = "#status = :to, status_at = :at, updated_at = :now, log_seq = :next"
        sets += ", log_reserved_ms = :ms, project_status = :ps"
        if to == "running":
            sets += ", release_id = :release, finished_at = :now, active_status = :to"
            values[":release"] = release["id"]
        operations.append(
            update_op(
                deployments,
                _key(item["project_id"], item["id"]),
                f"SET {sets}" + ("" if to == "running" else " REMOVE active_status"),
                "#status = :expected AND log_seq = :seq",
                names,
                values,
            )
        )
    operations.append(project_store.serve_op(project, new["id"], project_url, now))
    version = project.get("release_count", 0)
    operations.append(
        put_op(releases, {**release, "version": version + 1}, "attribute_not_exists(version)")
    )
    try:
        transact(operations)
    except Exception as error:
        if is_condition_failure(error):
            return False
        raise
    return True


def run_preview(new: dict[str, Any], older: list[dict[str, Any]], now: str) -> bool:
    """One transaction: the preview `new` deploying -> running, and each of `older` (the
    same branch's running previews) running -> stopped, pinned like `promote` to what the
    caller read, log seqs included. The project is not touched: a preview is never
    promoted. False when a condition failed (the caller re-reads and retries)."""
    ms = now_ms()
    operations = []
    for item, to, expected in [(new, "running", "deploying")] + [
        (old, "stopped", "running") for old in older
    ]:
        seq = item["log_seq"]
        values: dict[str, Any] = {
            ":to": to,
            ":expected": expected,
            ":now": now,
            ":seq": seq,
            ":next": seq + 1,
            ":ms": ms,
            ":at": precise(),
            ":ps": _project_status(item["project_id"], to),
        }
        sets = "#status = :to, status_at = :at, updated_at = :now, log_seq = :next"
        sets += ", log_reserved_ms = :ms, project_status = :ps"
        if to == "running":
            sets += ", finished_at = :now, active_status = :to, running_preview = :rp"
            values[":rp"] = RUNNING_PREVIEW
            update = f"SET {sets}"
        else:
            update = f"SET {sets} REMOVE active_status, running_preview"
        operations.append(
            update_op(
                deployments,
                _key(item["project_id"], item["id"]),
                update,
                "#status = :expected AND log_seq = :seq",
                {"#status": "status"},
                values,
            )
        )
    try:
        transact(operations)
    except Exception as error:
        if is_condition_failure(error):
            return False
        raise
    return True


def stuck(status: str, before: str) -> list[dict[str, Any]]:
    """Deployments that have been in `status` since before `before` (the sweeper; and,
    with a `before` in the future, every deployment in that status)."""
    found = deployments.query_all(
        "active_status = :s AND status_at < :before",
        {":s": status, ":before": before},
        index="by_active_status",
    )
    return list(found)


def pending_of_workspace(workspace_id: str, limit: int) -> list[dict[str, Any]]:
    """A workspace's waiting deployments, oldest first."""
    page, _ = deployments.query_page(
        "pending_workspace_id = :ws",
        {":ws": workspace_id},
        limit,
        index="by_pending_workspace",
        newest_first=False,
        key_of=lambda item: item,
    )
    return page


def list_releases(project_id: str, limit: int, start: dict | None):
    return releases.query_page(
        "project_id = :p",
        {":p": project_id},
        limit,
        start_key=start,
        key_of=lambda item: {"project_id": item["project_id"], "version": item["version"]},
    )


def delete(project_id: str, deployment_id: str) -> None:
    deployments.delete(_key(project_id, deployment_id))


def purge_releases_and_uploads(project_id: str) -> None:
    """Delete a project's releases and its upload records."""
    releases.batch_write(
        deletes=[
            {"project_id": project_id, "version": release["version"]}
            for release in releases.query_all("project_id = :p", {":p": project_id})
        ]
    )
    upload_store.delete_all(project_id)


def set_url(item: dict[str, Any], url: str) -> None:
    """A running deployment's new address (its app was started again). The project's URL
    does not change: the edge is switched to the new address."""
    deployments.update(
        _key(item["project_id"], item["id"]),
        "SET #url = :url",
        "attribute_exists(id)",
        {"#url": "url"},
        {":url": url},
    )
