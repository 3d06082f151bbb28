"""DynamoDB Stream records as plain values: the old and new images of one change."""

from __future__ import annotations

from typing import Any

from chalicelib.store.dynamo import deserialize


def images(record: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(old image, new image) of a record of a NEW_AND_OLD_IMAGES stream, as Lambda (or the
    local pump) hands it over; None where the change has none (an insert, a removal)."""
    change = record["dynamodb"]
    old, new = change.get("OldImage"), change.get("NewImage")
    return (deserialize(old) if old else None, deserialize(new) if new else None)
