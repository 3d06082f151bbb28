"""One-time claims of stream tickets, kept in the idempotency table (`ticket:<nonce>:<stream>`,
with its expiry as the table's TTL): a table of short-lived records keyed by a unique string."""

from __future__ import annotations

from chalicelib.store.dynamo import Table, is_condition_failure, serialize

records = Table("idempotency")


def claim(nonce: str, expires_at: int) -> bool:
    """Record that the ticket `nonce` (with the stream it opened) was redeemed; False if it
    already was."""
    try:
        records.ddb.put_item(
            TableName=records.name,
            Item=serialize({"id": f"ticket:{nonce}", "expires_at": expires_at}),
            ConditionExpression="attribute_not_exists(id)",
        )
    except Exception as error:
        if not is_condition_failure(error):
            raise
        return False
    return True
