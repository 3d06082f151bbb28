"""Upload records in DynamoDB, in their project's partition. `deployment_id` is set,
conditionally and once, by the deployment that uses the upload (store/deployments.py)."""

from __future__ import annotations

from typing import Any

from chalicelib.store.dynamo import Table

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
