"""Upload records in DynamoDB, in their project's partition. `deployment_id` is set,
conditionally and once, by the deployment that uses the upload (store/deployments.py)."""

from __future__ import annotations

from typing import Any

from chalicelib.store.dynamo import Table, update_op

uploads = Table("uploads")


def put(item: dict[str, Any]) -> None:
    uploads.put(item, condition="attribute_not_exists(id)")


def get(project_id: str, upload_id: str) -> dict[str, Any] | None:
    if not upload_id.startswith("upl_"):
        return None
    return uploads.get({"project_id": project_id, "id": upload_id})


def keys_of_project(project_id: str) -> list[dict[str, Any]]:
    return [
        {"project_id": project_id, "id": item["id"]}
        for item in uploads.query_all("project_id = :p", {":p": project_id})
    ]


def use_op(project_id: str, upload_id: str, deployment_id: str) -> dict:
    """Mark the upload used by this deployment, only if no deployment used it yet."""
    return update_op(
        uploads,
        {"project_id": project_id, "id": upload_id},
        "SET deployment_id = :dep",
        "attribute_exists(id) AND attribute_not_exists(deployment_id)",
        values={":dep": deployment_id},
    )


def delete_all(project_id: str) -> None:
    uploads.batch_write(deletes=keys_of_project(project_id))


def find(upload_id: str) -> dict[str, Any] | None:
    """An upload by id alone (detect names no project), through the index `by_id`."""
    if not upload_id.startswith("upl_"):
        return None
    found = next(uploads.query_all("id = :id", {":id": upload_id}, index="by_id"), None)
    return get(found["project_id"], upload_id) if found else None
