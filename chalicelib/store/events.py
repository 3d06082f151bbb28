"""Events in DynamoDB: one item per event in its workspace's partition, sorted by id
(time-sortable, so a Query lists newest first), with `type_key` (workspace#type) for the
`by_type` index that serves `?type=`. Items carry `expires_at` for TTL."""

from __future__ import annotations

from typing import Any

from chalicelib.store.dynamo import Table, is_condition_failure

events = Table("events")


def put(item: dict[str, Any]) -> bool:
    """Write an event once: False if it exists already (a handler that ran twice)."""
    try:
        events.put(item, condition="attribute_not_exists(id)")
    except Exception as error:
        if is_condition_failure(error):
            return False
        raise
    return True


def put_all(items: list[dict[str, Any]]) -> None:
    """Write events whatever is stored (25 to a request); an event given twice is written
    once, since a request may not name one item twice."""
    once = {(item["workspace_id"], item["id"]): item for item in items}
    events.batch_write(puts=list(once.values()))


def get(workspace_id: str, event_id: str) -> dict[str, Any] | None:
    return events.get({"workspace_id": workspace_id, "id": event_id})


def list_page(
    workspace_id: str,
    type_key: str | None,
    after_id: str,
    limit: int,
    start: dict[str, Any] | None,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Events with ids above `after_id` (newer than a moment), newest first, of one type
    when `type_key` is given."""
    if type_key is None:
        return events.query_page(
            "workspace_id = :w AND id > :after",
            {":w": workspace_id, ":after": after_id},
            limit,
            start_key=start,
            key_of=lambda item: {"workspace_id": item["workspace_id"], "id": item["id"]},
        )
    return events.query_page(
        "type_key = :t AND id > :after",
        {":t": type_key, ":after": after_id},
        limit,
        start_key=start,
        index="by_type",
        key_of=lambda item: {
            "workspace_id": item["workspace_id"],
            "id": item["id"],
            "type_key": item["type_key"],
        },
    )
