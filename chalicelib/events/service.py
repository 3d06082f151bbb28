"""Events: made once, kept 30 days, listed per workspace.

`new_event` is the one place an event's content is put together, whatever made it (a
stream record, a webhook test): what a webhook carries is exactly what it returns.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import ids
from chalicelib.core.clock import rfc3339
from chalicelib.core.errors import BadRequest, NotFound
from chalicelib.core.pagination import Page
from chalicelib.events.models import Event
from chalicelib.events.types import EVENT_TYPES
from chalicelib.store import events as store

RETENTION = timedelta(days=30)
LIST_NAME = "events"


def new_event(
    workspace_id: str, event_type: str, data: dict[str, Any], moment: datetime, seed: str
) -> dict[str, Any]:
    """The event item: its id is derived from `moment` and `seed` (what made it), so
    whoever makes it again makes the same event."""
    millis = int(moment.timestamp() * 1000)
    return {
        "workspace_id": workspace_id,
        "id": ids.derived_id("evt", millis, seed),
        "type": event_type,
        "type_key": f"{workspace_id}#{event_type}",
        "timestamp": rfc3339(moment),
        "at_ms": millis,
        "data": data,
        "expires_at": int((moment + RETENTION).timestamp()),
    }


def record(event: dict[str, Any]) -> bool:
    """Store an event once; False if it was stored already."""
    return store.put(event)


def record_all(made: list[dict[str, Any]]) -> None:
    """Store events made from stream records, together. One made again (a batch handed
    over again) is the same item, so writing it again changes nothing."""
    store.put_all(made)


def _horizon() -> str:
    """The smallest id of an event that is still kept: ids sort by time, so the key
    condition leaves out what TTL has not deleted yet."""
    oldest = datetime.now(UTC) - RETENTION
    return ids.derived_id("evt", int(oldest.timestamp() * 1000), "")[:14]


def find(workspace_id: str, event_id: str) -> dict[str, Any] | None:
    if not ids.could_be("evt", event_id):
        return None
    item = store.get(workspace_id, event_id)
    if item is None or item["expires_at"] <= datetime.now(UTC).timestamp():
        return None
    return item


def to_model(item: dict[str, Any]) -> Event:
    return Event(id=item["id"], type=item["type"], timestamp=item["timestamp"], data=item["data"])


def get(workspace_id: str, event_id: str) -> Event:
    item = find(workspace_id, event_id)
    if item is None:
        raise NotFound("Event")
    return to_model(item)


def list_events(
    workspace_id: str, event_type: str | None, limit: int, start: dict[str, Any] | None
) -> Page:
    if event_type is not None and event_type not in EVENT_TYPES:
        raise BadRequest(f"Query parameter 'type' must be one of: {', '.join(EVENT_TYPES)}")
    type_key = f"{workspace_id}#{event_type}" if event_type else None
    items, next_key = store.list_page(workspace_id, type_key, _horizon(), limit, start)
    return Page([to_model(item) for item in items], next_key, list_name(event_type), workspace_id)


def list_name(event_type: str | None) -> str:
    """Cursors are bound to the list with its filter."""
    return f"{LIST_NAME}:{event_type or '*'}"
