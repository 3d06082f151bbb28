"""API key records in DynamoDB, keyed by the SHA-256 of the key."""

from __future__ import annotations

from typing import Any

from chalicelib.store.dynamo import Table

api_keys = Table("api_keys")


def put_key(item: dict[str, Any]) -> None:
    api_keys.put(item, condition="attribute_not_exists(key_hash)")


def get_by_hash(key_hash: str) -> dict[str, Any] | None:
    return api_keys.get({"key_hash": key_hash})
