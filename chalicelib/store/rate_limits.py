"""Rate-limit buckets in DynamoDB, and the API call counters that ride on them.

One item per (workspace, principal): `tat`, the bucket's theoretical arrival time in
microseconds (see identity/ratelimit.py), and a `calls#<YYYY-MM>` counter per month. One
conditional UpdateItem takes a request's token (or a busy process's lease of several) and
counts the calls together, so usage is counted without a write of its own; usage reads a
workspace's items by Query.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.aws.errors import refused_item
from chalicelib.store.dynamo import Table, deserialize, is_condition_failure, serialize_value

buckets = Table("rate_limits")


@dataclass(frozen=True)
class Take:
    taken: bool
    tat: int | None  # after the write when taken; as found when not (None: no bucket yet)


def take(
    partition: str,
    principal: str,
    *,
    full: bool,
    now: int,
    interval: int,
    latest: int,
    calls_attribute: str,
    tokens: int = 1,
    calls: int = 1,
) -> Take:
    """Take `tokens` tokens and count `calls` API calls. `full`: the bucket is believed full
    (tat before `now`, or no item), so tat becomes now + tokens x interval. Otherwise tat
    grows by tokens x interval, which commutes with concurrent takes, as long as it lies in
    [now, latest]. A wrong belief fails the condition and returns the item as it is, for the
    caller to decide or try the other form."""
    step = tokens * interval
    if full:
        update = "SET tat = :fresh ADD #calls :calls"
        condition = "attribute_not_exists(tat) OR tat < :now"
        values = {":fresh": now + step, ":now": now, ":calls": calls}
    else:
        update = "SET tat = tat + :step ADD #calls :calls"
        condition = "tat BETWEEN :now AND :latest"
        values = {":step": step, ":now": now, ":latest": latest, ":calls": calls}
    try:
        result = buckets.ddb.update_item(
            TableName=buckets.name,
            Key={"workspace_id": {"S": partition}, "principal": {"S": principal}},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames={"#calls": calls_attribute},
            ExpressionAttributeValues={k: serialize_value(v) for k, v in values.items()},
            ReturnValues="UPDATED_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except Exception as error:
        if not is_condition_failure(error):
            raise
        found = deserialize(refused_item(error))
        return Take(False, found.get("tat"))
    return Take(True, deserialize(result["Attributes"])["tat"])


def calls(workspace_id: str, calls_attribute: str) -> int:
    """API calls of a workspace in one month, summed over its principals' buckets."""
    items = buckets.query_all("workspace_id = :ws", {":ws": workspace_id})
    return sum(item.get(calls_attribute, 0) for item in items)
