"""What the app's event handlers share: SQS records to JSON messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.core.log import logger


def each_message(event: Any, handle: Callable[[dict[str, Any]], None]) -> None:
    """Hand each record's JSON body to `handle`. A body that is not JSON is dropped (it
    would fail forever); any other error fails the batch, so SQS delivers it again, and
    the consumers are idempotent."""
    for record in event:
        try:
            message = json.loads(record.body)
        except ValueError:
            logger().error("Dropped a message that is not JSON", extra={"body": record.body[:200]})
            continue
        if not isinstance(message, dict):
            logger().error("Dropped a message that is not an object")
            continue
        handle(message)
