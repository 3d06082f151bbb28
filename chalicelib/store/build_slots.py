"""A workspace's concurrent-build slots in DynamoDB: one item per workspace whose
`holders` is the string set of the deployments building (or about to) under its plan's
limit. A set makes taking or giving back a slot twice for one deployment a no-op, so a
duplicated message can't leak or double-count a slot."""

from __future__ import annotations

from chalicelib.store.dynamo import Table, is_condition_failure

build_slots = Table("build_slots")


def acquire(workspace_id: str, deployment_id: str, limit: int) -> bool:
    """Take one of the workspace's concurrent-build slots for this deployment. The slot
    holders are a string set, so taking a slot twice for the same deployment is a no-op
    and releasing it twice is too: a duplicated message can't leak or double-count."""
    try:
        build_slots.update(
            {"workspace_id": workspace_id},
            "ADD holders :me",
            "attribute_not_exists(holders) OR size(holders) < :limit OR contains(holders, :id)",
            values={":me": {deployment_id}, ":limit": limit, ":id": deployment_id},
        )
        return True
    except Exception as error:
        if is_condition_failure(error):
            return False
        raise


def release(workspace_id: str, deployment_id: str) -> None:
    build_slots.update(
        {"workspace_id": workspace_id}, "DELETE holders :me", values={":me": {deployment_id}}
    )


def holders(workspace_id: str) -> set[str]:
    item = build_slots.get({"workspace_id": workspace_id})
    return set(item.get("holders", [])) if item else set()
