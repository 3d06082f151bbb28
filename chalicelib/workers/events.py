"""The entry points of events and webhooks that app.py binds: the tables' change streams,
the webhook-deliveries queue and the retry schedule."""

from __future__ import annotations

from typing import Any

from chalicelib.events import derive
from chalicelib.events import service as events
from chalicelib.webhooks import deliveries
from chalicelib.workers.sqs import each_message


def on_change(table: str, event: Any) -> None:
    """The records of one batch of `table`'s stream, in order. Every step is idempotent
    (an event and each delivery have ids derived from the record, and writing an event
    again writes the same item), so a batch that fails part-way is handed over again whole
    and makes nothing twice.

    A batch's events are written together (25 to a request) and each workspace's webhooks
    are read once for the batch, not once an event: every event of the batch was made
    before the batch was read, so a webhook created after that read (which the event's own
    read would have found) is one that event is too old for anyway. A webhook deleted
    while the batch is handled may still get its deliveries made, as one deleted between
    an event's read and its delivery always could: a delivery whose webhook is gone is
    never sent (`attempt` finds no endpoint)."""
    made = [item for record in event for item in derive.from_record(table, record.to_dict())]
    events.record_all(made)
    endpoints: dict[str, list[dict[str, Any]]] = {}
    for item in made:
        workspace_id = item["workspace_id"]
        if workspace_id not in endpoints:
            endpoints[workspace_id] = deliveries.endpoints_of(workspace_id)
        deliveries.fan_out(item, endpoints[workspace_id])


def on_webhook_delivery(event: Any) -> None:
    each_message(event, deliveries.on_message)


def on_webhook_schedule(event: Any) -> dict[str, int]:
    return deliveries.sweep()
