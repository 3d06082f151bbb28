"""Workspaces, partners and memberships (a user's role in a workspace) in DynamoDB.

A deleted workspace keeps its item, marked `deleted_at`, so that its id is never reused
and its partner's index can filter it out; every read here treats it as absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chalicelib.core import ids
from chalicelib.store.dynamo import (
    Table,
    get_together,
    is_condition_failure,
    put_op,
    transact,
)
from chalicelib.store.errors import Missing

workspaces = Table("workspaces")
partners = Table("partners")
memberships = Table("memberships")

_LIVE = "attribute_not_exists(deleted_at)"


def create_workspace(item: dict[str, Any], owner_user_id: str | None = None) -> None:
    """Write a workspace and, if given, its owner's membership in one transaction."""
    operations = [put_op(workspaces, item, "attribute_not_exists(id)")]
    if owner_user_id:
        membership = {
            "workspace_id": item["id"],
            "user_id": owner_user_id,
            "role": "owner",
            "created_at": item["created_at"],
            "updated_at": item["created_at"],
        }
        operations.append(put_op(memberships, membership, "attribute_not_exists(user_id)"))
    transact(operations)


def get_workspace(workspace_id: str) -> dict[str, Any] | None:
    if not ids.could_be("ws", workspace_id):
        return None
    item = workspaces.get({"id": workspace_id})
    if item is None or item.get("deleted_at"):
        return None
    return item


def get_workspaces(workspace_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The live workspaces among `workspace_ids` (at most 100), by id."""
    if not workspace_ids:
        return {}
    unique = list(dict.fromkeys(workspace_ids))
    found = get_together([(workspaces, {"id": wid}) for wid in unique])
    return {item["id"]: item for item in found if item and not item.get("deleted_at")}


def list_by_partner(
    partner_id: str, limit: int, start: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    return workspaces.query_page(
        "partner_id = :partner",
        {":partner": partner_id},
        limit,
        start_key=start,
        filter_expression=_LIVE,
        index="by_partner",
        key_of=lambda item: {"id": item["id"], "partner_id": item["partner_id"]},
    )


def update_workspace(workspace_id: str, changes: dict[str, Any], revision: int) -> bool:
    """Apply top-level field changes if the workspace is still at `revision` (False if it
    moved on); NotFound if it is gone."""
    names = {f"#f{i}": name for i, name in enumerate(changes)}
    values = {f":v{i}": value for i, value in enumerate(changes.values())}
    values.update({":seen": revision, ":one": 1, ":zero": 0})
    names["#rev"] = "revision"
    expression = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(changes)))
    expression += ", #rev = if_not_exists(#rev, :zero) + :one"
    try:
        workspaces.update(
            {"id": workspace_id},
            expression,
            f"attribute_exists(id) AND {_LIVE}"
            " AND (#rev = :seen OR (attribute_not_exists(#rev) AND :seen = :zero))",
            names,
            values,
        )
    except Exception as error:
        if not is_condition_failure(error):
            raise
        if get_workspace(workspace_id) is None:
            raise Missing("Workspace") from None
        return False
    return True


def mark_deleted(workspace_id: str, now: str) -> None:
    try:
        workspaces.update(
            {"id": workspace_id},
            "SET deleted_at = :now, updated_at = :now",
            f"attribute_exists(id) AND {_LIVE}",
            values={":now": now},
        )
    except Exception as error:
        if is_condition_failure(error):
            raise Missing("Workspace") from None
        raise


def put_partner(item: dict[str, Any]) -> None:
    partners.put(item, condition="attribute_not_exists(id)")


def get_partner(partner_id: str) -> dict[str, Any] | None:
    return partners.get({"id": partner_id})


def put_membership(workspace_id: str, user_id: str, role: str, now: str) -> None:
    """Make the user a member with `role`, or change the role of a member."""
    memberships.update(
        {"workspace_id": workspace_id, "user_id": user_id},
        "SET #role = :role, updated_at = :now, created_at = if_not_exists(created_at, :now)",
        names={"#role": "role"},
        values={":role": role, ":now": now},
    )


def get_membership(workspace_id: str, user_id: str) -> dict[str, Any] | None:
    if not ids.could_be("ws", workspace_id):
        return None
    return memberships.get({"workspace_id": workspace_id, "user_id": user_id})


def delete_membership(workspace_id: str, user_id: str) -> bool:
    try:
        memberships.delete(
            {"workspace_id": workspace_id, "user_id": user_id}, "attribute_exists(user_id)"
        )
    except Exception as error:
        if is_condition_failure(error):
            return False
        raise
    return True


def list_memberships_of_user(
    user_id: str, limit: int, start: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A user's memberships, newest workspace first."""
    return memberships.query_page(
        "user_id = :user",
        {":user": user_id},
        limit,
        start_key=start,
        index="by_user",
        key_of=lambda item: {"workspace_id": item["workspace_id"], "user_id": item["user_id"]},
    )


def members_of(workspace_id: str) -> Iterator[dict[str, Any]]:
    return memberships.query_all("workspace_id = :ws", {":ws": workspace_id})
