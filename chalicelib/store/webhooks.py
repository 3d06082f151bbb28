"""Webhook endpoints and their deliveries in DynamoDB.

An endpoint lives in its workspace's partition (`webhooks`, sort key its id). A delivery
(one event to one endpoint) lives in its endpoint's partition (`webhook_deliveries`, sort
key its id, time-sortable), with two index attributes:
- `status_key` (webhook#status), for the `by_status` index that serves `?status=`;
- `due_shard` and `due_at`, only while the delivery waits for an attempt: the sparse
  `retry_due` index is how the retry schedule finds what is due without a Scan.

An attempt is made only by whoever holds the delivery's claim (`claim_token` until
`claimed_until`), taken with a conditional write on the attempt number it expects, so two
consumers or two sweeps never send one delivery at once.
"""

from __future__ import annotations

from typing import Any

from chalicelib.store.dynamo import Table, is_condition_failure
from chalicelib.store.errors import Missing

webhooks = Table("webhooks")
deliveries = Table("webhook_deliveries")
DUE_SHARD = "due"
_OPEN = "#status IN (:pending, :retrying)"
_OPEN_VALUES = {":pending": "pending", ":retrying": "retrying"}


def _endpoint_key(workspace_id: str, webhook_id: str) -> dict[str, str]:
    return {"workspace_id": workspace_id, "id": webhook_id}


def _delivery_key(webhook_id: str, delivery_id: str) -> dict[str, str]:
    return {"webhook_id": webhook_id, "id": delivery_id}


def create_endpoint(item: dict[str, Any]) -> None:
    webhooks.put(item, condition="attribute_not_exists(id)")


def get_endpoint(workspace_id: str, webhook_id: str) -> dict[str, Any] | None:
    if not webhook_id.startswith("wh_"):
        return None
    return webhooks.get(_endpoint_key(workspace_id, webhook_id))


def endpoints_of(workspace_id: str) -> list[dict[str, Any]]:
    return list(webhooks.query_all("workspace_id = :w", {":w": workspace_id}))


def list_endpoints(
    workspace_id: str, limit: int, start: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    return webhooks.query_page(
        "workspace_id = :w",
        {":w": workspace_id},
        limit,
        start_key=start,
        key_of=lambda item: _endpoint_key(item["workspace_id"], item["id"]),
    )


def update_endpoint(
    workspace_id: str, webhook_id: str, sets: dict[str, Any], removes: tuple[str, ...] = ()
) -> dict[str, Any]:
    """SET each of `sets` and REMOVE each of `removes`; Missing if the endpoint is gone."""
    names = {f"#s{i}": name for i, name in enumerate(sets)}
    names.update({f"#r{i}": name for i, name in enumerate(removes)})
    values = {f":s{i}": value for i, value in enumerate(sets.values())}
    update = "SET " + ", ".join(f"#s{i} = :s{i}" for i in range(len(sets)))
    if removes:
        update += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
    try:
        return webhooks.update(
            _endpoint_key(workspace_id, webhook_id), update, "attribute_exists(id)", names, values
        )
    except Exception as error:
        if is_condition_failure(error):
            raise Missing("Webhook") from None
        raise


def delete_endpoint(workspace_id: str, webhook_id: str) -> None:
    try:
        webhooks.delete(_endpoint_key(workspace_id, webhook_id), "attribute_exists(id)")
    except Exception as error:
        if is_condition_failure(error):
            raise Missing("Webhook") from None
        raise


def purge_deliveries(webhook_id: str) -> None:
    """Delete every delivery of an endpoint (repeatable)."""
    found = deliveries.query_all("webhook_id = :w", {":w": webhook_id})
    deliveries.batch_write(deletes=[_delivery_key(webhook_id, item["id"]) for item in found])


def count_attempt(workspace_id: str, webhook_id: str, succeeded: bool, now: str) -> dict | None:
    """Count one attempt on the endpoint's counters; the endpoint after, or None if gone.
    `failing_since` is when the failures since the last success began."""
    if succeeded:
        update = (
            "SET success_count = if_not_exists(success_count, :zero) + :one, "
            "consecutive_failures = :zero, last_delivery_at = :now REMOVE failing_since"
        )
    else:
        update = (
            "SET failure_count = if_not_exists(failure_count, :zero) + :one, "
            "consecutive_failures = if_not_exists(consecutive_failures, :zero) + :one, "
            "last_delivery_at = :now, failing_since = if_not_exists(failing_since, :now)"
        )
    try:
        return webhooks.update(
            _endpoint_key(workspace_id, webhook_id),
            update,
            "attribute_exists(id)",
            values={":zero": 0, ":one": 1, ":now": now},
        )
    except Exception as error:
        if is_condition_failure(error):
            return None
        raise


def disable(workspace_id: str, webhook_id: str, reason: str, now: str) -> None:
    """Turn an endpoint off (once: an endpoint already off keeps its first reason)."""
    try:
        webhooks.update(
            _endpoint_key(workspace_id, webhook_id),
            "SET is_active = :off, disabled_reason = :reason, updated_at = :now",
            "attribute_exists(id) AND is_active = :on",
            values={":off": False, ":on": True, ":reason": reason, ":now": now},
        )
    except Exception as error:
        if not is_condition_failure(error):
            raise


def create_delivery(item: dict[str, Any]) -> bool:
    """Write a delivery once: False if it exists (the same event fanned out again)."""
    try:
        deliveries.put(item, condition="attribute_not_exists(id)")
    except Exception as error:
        if is_condition_failure(error):
            return False
        raise
    return True


def get_delivery(webhook_id: str, delivery_id: str) -> dict[str, Any] | None:
    if not delivery_id.startswith("whd_"):
        return None
    return deliveries.get(_delivery_key(webhook_id, delivery_id))


def list_deliveries(
    webhook_id: str, status: str | None, limit: int, start: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    if status is None:
        return deliveries.query_page(
            "webhook_id = :w",
            {":w": webhook_id},
            limit,
            start_key=start,
            key_of=lambda item: _delivery_key(item["webhook_id"], item["id"]),
        )
    return deliveries.query_page(
        "status_key = :s",
        {":s": f"{webhook_id}#{status}"},
        limit,
        start_key=start,
        index="by_status",
        key_of=lambda item: {
            **_delivery_key(item["webhook_id"], item["id"]),
            "status_key": item["status_key"],
        },
    )


def due(now: str, limit: int) -> list[dict[str, Any]]:
    """Deliveries waiting for an attempt whose time has come, oldest due first."""
    items, _ = deliveries.query_page(
        "due_shard = :shard AND due_at <= :now",
        {":shard": DUE_SHARD, ":now": now},
        limit,
        index="retry_due",
        newest_first=False,
        key_of=lambda item: item,
    )
    return items


def claim(
    webhook_id: str, delivery_id: str, attempt: int, now: str, until: str, token: str
) -> dict[str, Any] | None:
    """Take the right to make attempt `attempt + 1`: the delivery, or None if it is not
    open, has moved past `attempt`, or someone else's claim has not yet run out."""
    try:
        return deliveries.update(
            _delivery_key(webhook_id, delivery_id),
            "SET claimed_until = :until, claim_token = :token",
            f"{_OPEN} AND #attempt = :attempt"
            " AND (attribute_not_exists(claimed_until) OR claimed_until < :now)",
            {"#status": "status", "#attempt": "attempt"},
            {**_OPEN_VALUES, ":attempt": attempt, ":now": now, ":until": until, ":token": token},
        )
    except Exception as error:
        if is_condition_failure(error):
            return None
        raise


def record_attempt(
    webhook_id: str,
    delivery_id: str,
    token: str,
    attempts: list[dict[str, Any]],
    status: str,
    next_retry_at: str | None,
) -> dict[str, Any] | None:
    """Record an attempt made under the claim `token` (`attempts`: the delivery's attempts
    with it, newest first) and release the claim; the delivery waits for its next attempt
    (`due_at`) unless it has ended. None if the claim was lost meanwhile."""
    values: dict[str, Any] = {
        ":token": token,
        ":attempts": attempts,
        ":one": 1,
        ":status": status,
        ":status_key": f"{webhook_id}#{status}",
        ":code": attempts[0]["response_code"],
    }
    update = (
        "SET #attempts = :attempts, #attempt = #attempt + :one, #status = :status, "
        "status_key = :status_key, response_code = :code"
    )
    removes = ["claimed_until", "claim_token", "manual"]
    if next_retry_at:
        update += ", next_retry_at = :next, due_at = :next, due_shard = :shard"
        values.update({":next": next_retry_at, ":shard": DUE_SHARD})
    else:
        removes += ["next_retry_at", "due_at", "due_shard"]
    try:
        return deliveries.update(
            _delivery_key(webhook_id, delivery_id),
            update + " REMOVE " + ", ".join(removes),
            "claim_token = :token",
            {"#status": "status", "#attempts": "attempts", "#attempt": "attempt"},
            values,
        )
    except Exception as error:
        if is_condition_failure(error):
            return None
        raise


def reopen(webhook_id: str, delivery_id: str, now: str) -> dict[str, Any] | None:
    """Make a delivery that has not succeeded due now (a manual retry); None if it did."""
    try:
        return deliveries.update(
            _delivery_key(webhook_id, delivery_id),
            "SET #status = :retrying, status_key = :status_key, next_retry_at = :now, "
            "due_at = :now, due_shard = :shard, manual = :yes",
            "attribute_exists(id) AND #status <> :success",
            {"#status": "status"},
            {
                ":retrying": "retrying",
                ":status_key": f"{webhook_id}#retrying",
                ":now": now,
                ":shard": DUE_SHARD,
                ":success": "success",
                ":yes": True,
            },
        )
    except Exception as error:
        if is_condition_failure(error):
            return None
        raise
