"""API key records in DynamoDB, keyed by the SHA-256 of the key.

A workspace key that counts against the workspace's active-key limit carries
`counted: true`, and the workspace item carries `active_keys`, the number of such keys.
Every write that gives or takes a slot changes both in one transaction, conditioned on
the key's own state, so the counter is exact whatever runs concurrently.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chalicelib.core import ids
from chalicelib.store.dynamo import Table, is_condition_failure, put_op, transact, update_op
from chalicelib.store.errors import Missing
from chalicelib.store.workspaces import workspaces

api_keys = Table("api_keys")

_NOT_REVOKED = "attribute_not_exists(revoked_at)"


def _key(item: dict[str, Any]) -> dict[str, str]:
    return {"key_hash": item["key_hash"]}


def _index_key(item: dict[str, Any]) -> dict[str, str]:
    return {"key_hash": item["key_hash"], "owner_id": item["owner_id"], "id": item["id"]}


def _slot_change(workspace_id: str, delta: int) -> dict:
    return update_op(
        workspaces,
        {"id": workspace_id},
        "SET active_keys = if_not_exists(active_keys, :zero) + :delta",
        values={":zero": 0, ":delta": delta},
    )


def put_key(item: dict[str, Any]) -> None:
    """A key that takes no slot (a partner's)."""
    api_keys.put(item, condition="attribute_not_exists(key_hash)")


def put_counted_key(item: dict[str, Any], limit: int) -> bool:
    """Write a workspace key and take a slot, unless the workspace has `limit` already
    (False) or is gone (NotFound)."""
    claim = update_op(
        workspaces,
        {"id": item["workspace_id"]},
        "SET active_keys = if_not_exists(active_keys, :zero) + :one",
        "attribute_exists(id) AND attribute_not_exists(deleted_at)"
        " AND (attribute_not_exists(active_keys) OR active_keys < :limit)",
        values={":zero": 0, ":one": 1, ":limit": limit},
    )
    put = put_op(api_keys, {**item, "counted": True}, "attribute_not_exists(key_hash)")
    try:
        transact([claim, put])
    except Exception as error:
        if is_condition_failure(error):
            return False
        raise
    return True


def get_by_hash(key_hash: str) -> dict[str, Any] | None:
    return api_keys.get({"key_hash": key_hash})


def get_by_id(key_id: str) -> dict[str, Any] | None:
    if not ids.could_be("key", key_id):
        return None
    found = list(api_keys.query_all("id = :id", {":id": key_id}, index="by_id"))
    return found[0] if found else None


def list_page(
    owner_id: str, limit: int, start: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Keys of an owner that are not revoked, newest first."""
    return api_keys.query_page(
        "owner_id = :owner",
        {":owner": owner_id},
        limit,
        start_key=start,
        filter_expression=_NOT_REVOKED,
        index="by_owner",
        key_of=_index_key,
    )


def owned(owner_id: str) -> Iterator[dict[str, Any]]:
    """Every key of an owner that is not revoked."""
    return api_keys.query_all(
        "owner_id = :owner", {":owner": owner_id}, index="by_owner", filter_expression=_NOT_REVOKED
    )


def revoke(item: dict[str, Any], now: str) -> None:
    """Revoke a key, giving back its slot if it held one; NotFound if already revoked."""
    if item.get("counted") and item.get("workspace_id"):
        release = update_op(
            api_keys,
            _key(item),
            "SET revoked_at = :now REMOVE counted",
            f"attribute_exists(counted) AND {_NOT_REVOKED}",
            values={":now": now},
        )
        try:
            transact([release, _slot_change(item["workspace_id"], -1)])
            return
        except Exception as error:
            if not is_condition_failure(error):
                raise
    try:
        api_keys.update(
            _key(item),
            "SET revoked_at = :now REMOVE counted",
            f"attribute_exists(key_hash) AND attribute_not_exists(counted) AND {_NOT_REVOKED}",
            values={":now": now},
        )
    except Exception as error:
        if is_condition_failure(error):
            raise Missing("API key") from None
        raise


def release_expired(item: dict[str, Any], now: str) -> bool:
    """Give back the slot of a key that has expired; False if it held none by now."""
    release = update_op(
        api_keys,
        _key(item),
        "REMOVE counted",
        "attribute_exists(counted) AND expires_at <= :now",
        values={":now": now},
    )
    try:
        transact([release, _slot_change(item["workspace_id"], -1)])
    except Exception as error:
        if is_condition_failure(error):
            return False
        raise
    return True


def rotate(old: dict[str, Any], new: dict[str, Any], old_expires_at: str, now: str) -> bool:
    """Write `new`, which takes over the slot of `old`; `old` keeps working until
    `old_expires_at`. False if `old` no longer holds a slot (rotated, revoked, expired)."""
    hand_over = update_op(
        api_keys,
        _key(old),
        "SET expires_at = :expires, rotated_at = :now, replaced_by = :new REMOVE counted",
        f"attribute_exists(counted) AND {_NOT_REVOKED}",
        values={":expires": old_expires_at, ":now": now, ":new": new["id"]},
    )
    put = put_op(api_keys, {**new, "counted": True}, "attribute_not_exists(key_hash)")
    try:
        transact([hand_over, put])
    except Exception as error:
        if is_condition_failure(error):
            return False
        raise
    return True


def touch(key_hash: str, now: str) -> None:
    """Record that a key was used (at most once a minute per key and process)."""
    try:
        api_keys.update(
            {"key_hash": key_hash},
            "SET last_used_at = :now",
            "attribute_exists(key_hash)",
            values={":now": now},
        )
    except Exception as error:
        if not is_condition_failure(error):
            raise


def active_count(workspace_id: str) -> int:
    """How many keys of the workspace hold a slot: the `api_keys` figure of usage."""
    item = workspaces.get({"id": workspace_id})
    return int((item or {}).get("active_keys", 0))
