"""Projects in DynamoDB: one item per project (sort key = its id) and one uniqueness item
per slug (sort key `slug#<slug>`) in the same partition, written in one transaction so a
slug can never be taken twice, whatever runs concurrently."""

from __future__ import annotations

from typing import Any

from chalicelib.aws.errors import cancellation_codes
from chalicelib.core import ids
from chalicelib.store.dynamo import (
    Table,
    delete_op,
    get_together,
    is_condition_failure,
    put_op,
    transact,
    update_op,
)
from chalicelib.store.errors import Changed, Missing, Taken

projects = Table("projects")
SLUG = "slug#"


def _slug_item(workspace_id: str, slug: str, project_id: str) -> dict[str, Any]:
    return {"workspace_id": workspace_id, "sk": SLUG + slug, "project_id": project_id}


def _key(workspace_id: str, project_id: str) -> dict[str, str]:
    return {"workspace_id": workspace_id, "sk": project_id}


def create(item: dict[str, Any], extra_operations: list[dict] | None = None) -> None:
    """Write a project and claim its slug; `extra_operations` join the same transaction
    (the project counter of quotas, for one)."""
    operations = [
        put_op(projects, {**item, "sk": item["id"]}, "attribute_not_exists(sk)"),
        put_op(
            projects,
            _slug_item(item["workspace_id"], item["slug"], item["id"]),
            "attribute_not_exists(sk)",
        ),
        *(extra_operations or []),
    ]
    _transact_claiming_slug(operations, item["slug"], 1)


def failed_operations(error: Exception) -> list[int]:
    """Indexes of the operations whose condition cancelled a transaction."""
    codes = cancellation_codes(error)
    return [i for i, code in enumerate(codes) if code == "ConditionalCheckFailed"]


def _transact_claiming_slug(operations: list[dict], slug: str, slug_index: int) -> None:
    """Run a transaction whose operation `slug_index` claims `slug`: a taken slug is a
    Conflict; another failed condition is re-raised for the caller to interpret."""
    try:
        transact(operations)
    except Exception as error:
        if is_condition_failure(error) and slug_index in failed_operations(error):
            raise Taken(f"The slug '{slug}' is already taken in this workspace") from None
        raise


def get(workspace_id: str, project_id: str) -> dict[str, Any]:
    if not ids.could_be("prj", project_id):
        raise Missing("Project")
    item = projects.get(_key(workspace_id, project_id))
    if item is None:
        raise Missing("Project")
    return item


def get_with(
    workspace_id: str, project_id: str, other: tuple[Table, dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The project, as get() reads it, and another item (table, key) read in the same
    request, or None."""
    if not ids.could_be("prj", project_id):
        raise Missing("Project")
    project, item = get_together([(projects, _key(workspace_id, project_id)), other])
    if project is None:
        raise Missing("Project")
    return project, item


def list_page(
    workspace_id: str,
    limit: int,
    start: dict[str, Any] | None,
    status: str | None,
    search: str | None,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    filters, values, names = [], {":ws": workspace_id, ":prefix": "prj_"}, {}
    if status:
        filters.append("#status = :status")
        names["#status"] = "status"
        values[":status"] = status
    if search:
        filters.append("(contains(name_lc, :q) OR contains(slug, :q))")
        values[":q"] = search.lower()
    return projects.query_page(
        "workspace_id = :ws AND begins_with(sk, :prefix)",
        values,
        limit,
        start_key=start,
        names=names or None,
        filter_expression=" AND ".join(filters) or None,
        key_of=lambda item: {"workspace_id": item["workspace_id"], "sk": item["sk"]},
    )


def ids_in(workspace_id: str) -> list[str]:
    """The ids of every project of a workspace (deleting a workspace)."""
    return [
        item["sk"]
        for item in projects.query_all(
            "workspace_id = :ws AND begins_with(sk, :prefix)",
            {":ws": workspace_id, ":prefix": "prj_"},
        )
    ]


def update(workspace_id: str, project_id: str, changes: dict[str, Any], old_slug: str) -> None:
    """Apply field changes; a new slug is claimed and the old one released atomically."""
    names = {f"#f{i}": name for i, name in enumerate(changes)}
    values = {f":v{i}": value for i, value in enumerate(changes.values())}
    sets = [f"#f{i} = :v{i}" for i in range(len(changes)) if changes[names[f"#f{i}"]] is not None]
    removes = [f"#f{i}" for i in range(len(changes)) if changes[names[f"#f{i}"]] is None]
    values = {k: v for k, v in values.items() if v is not None}
    expression = ("SET " + ", ".join(sets) if sets else "") + (
        " REMOVE " + ", ".join(removes) if removes else ""
    )
    names["#slug"] = "slug"
    values[":old_slug"] = old_slug
    condition = "attribute_exists(sk) AND #slug = :old_slug"
    new_slug = changes.get("slug")
    operations = [
        update_op(projects, _key(workspace_id, project_id), expression, condition, names, values)
    ]
    if new_slug and new_slug != old_slug:
        operations += [
            put_op(
                projects,
                _slug_item(workspace_id, new_slug, project_id),
                "attribute_not_exists(sk)",
            ),
            delete_op(projects, {"workspace_id": workspace_id, "sk": SLUG + old_slug}),
        ]
    try:
        _transact_claiming_slug(operations, new_slug or old_slug, 1)
    except Exception as error:
        if is_condition_failure(error):
            raise Changed("The project changed while it was being updated; retry") from None
        raise


def delete(workspace_id: str, project_id: str, slug: str, extra_operations=None) -> None:
    operations = [
        delete_op(projects, _key(workspace_id, project_id), "attribute_exists(sk)"),
        delete_op(projects, {"workspace_id": workspace_id, "sk": SLUG + slug}),
        *(extra_operations or []),
    ]
    try:
        transact(operations)
    except Exception as error:
        if is_condition_failure(error):
            raise Missing("Project") from None
        raise


def set_env(workspace_id: str, project_id: str, entries: dict[str, dict[str, Any]]) -> dict:
    names = {"#env": "env"}
    values: dict[str, Any] = {}
    sets = []
    for i, (key, entry) in enumerate(entries.items()):
        names[f"#k{i}"] = key
        values[f":e{i}"] = entry
        sets.append(f"#env.#k{i} = :e{i}")
    values[":now"] = next(iter(entries.values()))["updated_at"]
    names["#updated"] = "updated_at"
    try:
        return projects.update(
            _key(workspace_id, project_id),
            "SET " + ", ".join(sets) + ", #updated = :now",
            "attribute_exists(sk)",
            names,
            values,
        )
    except Exception as error:
        if is_condition_failure(error):
            raise Missing("Project") from None
        raise


def delete_env(workspace_id: str, project_id: str, key: str, now: str) -> None:
    try:
        projects.update(
            _key(workspace_id, project_id),
            "REMOVE #env.#k SET #updated = :now",
            "attribute_exists(sk) AND attribute_exists(#env.#k)",
            {"#env": "env", "#k": key, "#updated": "updated_at"},
            {":now": now},
        )
    except Exception as error:
        if is_condition_failure(error):
            raise Missing("Environment variable") from None
        raise


# What a deployment's changes write to its project: each an operation for the deployment
# store's transactions, or a write of its own.


def count_deployment_op(workspace_id: str, project_id: str, expected_count: int) -> dict:
    """Take the project's next deployment number, only if the counter is still
    `expected_count` (optimistic: a concurrent create cancels the transaction)."""
    condition = "attribute_exists(sk) AND " + (
        "attribute_not_exists(deployment_count)" if expected_count == 0 else "deployment_count = :n"
    )
    values: dict[str, Any] = {":next": expected_count + 1}
    if expected_count:
        values[":n"] = expected_count
    return update_op(
        projects,
        _key(workspace_id, project_id),
        "SET deployment_count = :next",
        condition,
        values=values,
    )


def serve_op(project: dict[str, Any], deployment_id: str, url: str | None, now: str) -> dict:
    """Point the project at its new running deployment and count a release, pinned to the
    pointer and release count read in `project`."""
    current = project.get("current_deployment_id")
    version = project.get("release_count", 0)
    values: dict[str, Any] = {
        ":dep": deployment_id,
        ":url": url,
        ":running": "running",
        ":now": now,
        ":version": version + 1,
    }
    condition = "attribute_exists(sk) AND "
    if current:
        condition += "current_deployment_id = :current"
        values[":current"] = current
    else:
        condition += "attribute_not_exists(current_deployment_id)"
    if version:
        condition += " AND release_count = :old_version"
        values[":old_version"] = version
    else:
        condition += " AND attribute_not_exists(release_count)"
    return update_op(
        projects,
        _key(project["workspace_id"], project["id"]),
        "SET current_deployment_id = :dep, #url = :url, #status = :running, "
        "updated_at = :now, release_count = :version",
        condition,
        {"#url": "url", "#status": "status"},
        values,
    )


def set_status(
    workspace_id: str, project_id: str, status: str, now: str, unless_running: bool
) -> None:
    """Set the project's status; with `unless_running`, only while none of its deployments
    serves (a failed new version does not make a running project look failed)."""
    condition = "attribute_exists(sk)"
    if unless_running:
        condition += " AND attribute_not_exists(current_deployment_id)"
    try:
        projects.update(
            _key(workspace_id, project_id),
            "SET #status = :status, updated_at = :now",
            condition,
            {"#status": "status"},
            {":status": status, ":now": now},
        )
    except Exception as error:
        if not is_condition_failure(error):
            raise


def with_repository(match: str) -> list[dict[str, Any]]:
    """The projects, of any workspace, whose git repository has this match key (the index
    `by_git_repository`: a GitHub push finds its projects with one Query)."""
    found = projects.query_all("git_match = :m", {":m": match}, index="by_git_repository")
    return [item for item in found if item.get("id")]
