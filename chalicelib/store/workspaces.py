"""Workspaces and partners in DynamoDB."""

from __future__ import annotations

from typing import Any

from chalicelib.store.dynamo import Table

workspaces = Table("workspaces")
partners = Table("partners")


def put_workspace(item: dict[str, Any]) -> None:
    workspaces.put(item, condition="attribute_not_exists(id)")


def get_workspace(workspace_id: str) -> dict[str, Any] | None:
    item = workspaces.get({"id": workspace_id})
    if item is None or item.get("deleted_at"):
        return None
    return item


def put_partner(item: dict[str, Any]) -> None:
    partners.put(item, condition="attribute_not_exists(id)")
