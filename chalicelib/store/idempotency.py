"""Idempotency records in DynamoDB, one per (principal, workspace, key): the request's
fingerprint, and either a lease (in progress) or the stored response (completed)."""

from __future__ import annotations

from typing import Any

from chalicelib.aws.errors import refused_item
from chalicelib.store.dynamo import (
    Table,
    deserialize,
    is_condition_failure,
    serialize,
    serialize_value,
)

records = Table("idempotency")


def claim(item: dict[str, Any], now: int) -> dict[str, Any] | None:
    """Write an in-progress record, unless a live record holds the key; None when written,
    else that record. A record counts as gone once expired, and an in-progress one whose
    lease ran out (its request died) can be taken over by the same request."""
    try:
        records.ddb.put_item(
            TableName=records.name,
            Item=serialize(item),
            ConditionExpression=(
                "attribute_not_exists(id) OR expires_at <= :now"
                " OR (#status = :in_progress AND lease_until <= :now AND fingerprint = :fp)"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":now": serialize_value(now),
                ":in_progress": serialize_value("in_progress"),
                ":fp": serialize_value(item["fingerprint"]),
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except Exception as error:
        if not is_condition_failure(error):
            raise
        return deserialize(refused_item(error))
    return None


def complete(record_id: str, lease: str, response: dict[str, Any]) -> bool:
    """Store the response, if this request still holds the lease."""
    try:
        records.update(
            {"id": record_id},
            "SET #status = :completed, #response = :response REMOVE lease, lease_until",
            condition="lease = :lease",
            names={"#status": "status", "#response": "response"},
            values={":completed": "completed", ":response": response, ":lease": lease},
        )
    except Exception as error:
        if is_condition_failure(error):
            return False
        raise
    return True


def release(record_id: str, lease: str) -> None:
    """Forget the record, if this request still holds the lease: the key can be retried."""
    try:
        records.delete({"id": record_id}, condition="lease = :lease", values={":lease": lease})
    except Exception as error:
        if not is_condition_failure(error):
            raise
