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
    (the event and each delivery are written once, by ids derived from the record), so a
    batch that fails part-way is handed over again whole and makes nothing twice."""
    for record in event:
        for item in derive.from_record(table, record.to_dict()):
            events.record(item)
            deliveries.fan_out(item)


def on_webhook_delivery(event: Any) -> None:
    each_message(event, deliveries.on_message)


def on_webhook_schedule(event: Any) -> dict[str, int]:
    return deliveries.sweep()
