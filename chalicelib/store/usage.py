"""Quota counters in DynamoDB: one item per (workspace, metric), where a metric is
`projects` (a count), `deployments#<YYYY-MM-DD>` or `build_seconds#<YYYY-MM>` (per period;
their items carry `expires_at` for TTL, and readers only ever ask for the current period).

A counter with a limit only grows by a conditional write, so concurrent claims can never
pass the limit together.
"""

from __future__ import annotations

from typing import Any

from chalicelib.aws.errors import cancellation_reasons, refused_item
from chalicelib.store.dynamo import (
    Table,
    deserialize,
    get_together,
    is_condition_failure,
    serialize,
    serialize_value,
    update_op,
)

usage = Table("usage")

COUNT = "count"


def _key(workspace_id: str, metric: str) -> dict[str, str]:
    return {"workspace_id": workspace_id, "metric": metric}


def _claim(limit: int | None, amount: int) -> tuple[str, str | None, dict[str, Any]]:
    values: dict[str, Any] = {":amount": amount}
    if limit is None:
        return "ADD #count :amount", None, values
    values[":room"] = limit - amount
    return "ADD #count :amount", "attribute_not_exists(#count) OR #count <= :room", values


def claim_op(workspace_id: str, metric: str, limit: int | None) -> dict[str, Any]:
    """A transaction operation adding one to a count, refused once it would pass `limit`."""
    update, condition, values = _claim(limit, 1)
    op = update_op(usage, _key(workspace_id, metric), update, condition, {"#count": COUNT}, values)
    op["Update"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return op


def release_op(workspace_id: str, metric: str) -> dict[str, Any]:
    """A transaction operation taking one off a count."""
    return update_op(
        usage,
        _key(workspace_id, metric),
        "ADD #count :minus",
        None,
        {"#count": COUNT},
        {":minus": -1},
    )


def failed_claim(error: Exception, workspace_id: str, metric: str) -> int | None:
    """The count found, if `error` is a transaction canceled because the claim of this
    counter would have passed its limit; None if it failed for another reason."""
    if not is_condition_failure(error):
        return None
    for reason in cancellation_reasons(error):
        item = deserialize(reason.get("Item") or {})
        if (
            reason.get("Code") == "ConditionalCheckFailed"
            and item.get("workspace_id") == workspace_id
            and item.get("metric") == metric
        ):
            return item.get(COUNT, 0)
    return None


def increment(
    workspace_id: str, metric: str, limit: int | None, expires_at: int
) -> tuple[bool, int]:
    """Add one to a period's count unless that would pass `limit`: (done, count after, or
    as found when refused)."""
    update, condition, values = _claim(limit, 1)
    values[":expires"] = expires_at
    kwargs: dict[str, Any] = {
        "TableName": usage.name,
        "Key": serialize(_key(workspace_id, metric)),
        "UpdateExpression": update + " SET expires_at = :expires",
        "ExpressionAttributeNames": {"#count": COUNT},
        "ExpressionAttributeValues": {k: serialize_value(v) for k, v in values.items()},
        "ReturnValues": "UPDATED_NEW",
    }
    if condition:
        kwargs["ConditionExpression"] = condition
        kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    try:
        result = usage.ddb.update_item(**kwargs)
    except Exception as error:
        if not is_condition_failure(error):
            raise
        return False, deserialize(refused_item(error)).get(COUNT, 0)
    return True, deserialize(result["Attributes"])[COUNT]


def add(workspace_id: str, metric: str, amount: float, expires_at: int) -> None:
    usage.update(
        _key(workspace_id, metric),
        "ADD #count :amount SET expires_at = :expires",
        names={"#count": COUNT},
        values={":amount": amount, ":expires": expires_at},
    )


def counts(workspace_id: str, metrics: list[str]) -> dict[str, float]:
    """The counters of several metrics, in one read (0 for a counter never written)."""
    found = get_together([(usage, _key(workspace_id, metric)) for metric in metrics])
    return {metric: (item or {}).get(COUNT, 0) for metric, item in zip(metrics, found, strict=True)}
