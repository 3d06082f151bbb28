"""Authentication: turn the Authorization header into a Principal.

A key is checked in this order: its form and checksum (no I/O), then an in-memory cache
of verified keys (bounded in size and time, so revocation reaches a warm Lambda within
`key_cache_ttl_s`), then DynamoDB by the key's SHA-256.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from chalicelib import tokens
from chalicelib.clock import parse_rfc3339, utcnow
from chalicelib.errors import Unauthorized
from chalicelib.principal import Principal
from chalicelib.settings import get_settings
from chalicelib.store import keys as key_store
from chalicelib.store import workspaces as workspace_store


class TTLCache:
    """A small LRU whose entries expire; safe across the local server's threads."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: str, ttl: float) -> Any | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None or time.monotonic() - found[0] > ttl:
                self._entries.pop(key, None)
                return None
            self._entries.move_to_end(key)
            return found[1]

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_keys = TTLCache()
_workspaces = TTLCache()


def bearer_token(headers: Any) -> str:
    header = headers.get("authorization")
    if not header:
        raise Unauthorized("Missing Authorization header: send 'Authorization: Bearer <key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("The Authorization header must be 'Bearer <key>'")
    return token


def authenticate(headers: Any) -> Principal:
    token = bearer_token(headers)
    parts = tokens.split(token)
    if parts is None:
        raise Unauthorized("The API key is malformed or its checksum is wrong")
    record = _verified_key(tokens.hash_key(token))
    if parts[0] == tokens.PARTNER_PREFIX:
        raise Unauthorized("Partner keys are not accepted on this route")
    workspace = cached_workspace(record["workspace_id"])
    if workspace is None:
        raise Unauthorized("The API key's workspace no longer exists")
    return Principal(
        kind="workspace_key",
        id=record["id"],
        key_id=record["id"],
        scopes=tuple(record.get("scopes", [])),
        workspace_id=workspace["id"],
        tier=workspace.get("tier", "free"),
    )


def _verified_key(key_hash: str) -> dict[str, Any]:
    ttl = get_settings().key_cache_ttl_s
    record = _keys.get(key_hash, ttl)
    if record is None:
        record = key_store.get_by_hash(key_hash)
        if record is None:
            raise Unauthorized("The API key is not valid")
        _keys.put(key_hash, record)
    if record.get("revoked_at"):
        raise Unauthorized("The API key has been revoked")
    expires_at = record.get("expires_at")
    if expires_at and parse_rfc3339(expires_at) <= utcnow():
        raise Unauthorized("The API key has expired")
    return record


def cached_workspace(workspace_id: str) -> dict[str, Any] | None:
    ttl = get_settings().key_cache_ttl_s
    workspace = _workspaces.get(workspace_id, ttl)
    if workspace is None:
        workspace = workspace_store.get_workspace(workspace_id)
        if workspace is not None:
            _workspaces.put(workspace_id, workspace)
    return workspace


def forget_cached() -> None:
    _keys.clear()
    _workspaces.clear()
