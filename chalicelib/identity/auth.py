"""Authentication: turn the Authorization header (and X-Workspace-ID) into a Principal.

A token is checked in this order: its form (an API key's checksum, a JWT's shape) with
no I/O; then, for an API key, an in-memory cache of verified keys; then DynamoDB by the
key's SHA-256. A user JWT is verified against the issuer's cached JWKS (oidc.py).

The caches (keys, workspaces, memberships, partners) hold entries for at most
`key_cache_ttl_s` (5 s or less). Expiry is compared on every request, so an expired key
is refused at once even from the cache. A revocation made in this process evicts the
key here at once; one made elsewhere reaches this process when the entry ages out.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from chalicelib.core.clock import now_iso, parse_rfc3339, utcnow
from chalicelib.core.errors import BadRequest, NotFound, Unauthorized
from chalicelib.core.scopes import ROLES
from chalicelib.core.settings import get_settings
from chalicelib.identity import oidc, tokens
from chalicelib.identity.principal import Principal
from chalicelib.store import keys as key_store
from chalicelib.store import workspaces as workspace_store

WORKSPACE_HEADER = "x-workspace-id"


class TTLCache:
    """A small LRU whose entries expire; safe across the local server's threads."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._entries: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: Any, ttl: float) -> Any | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None or time.monotonic() - found[0] > ttl:
                self._entries.pop(key, None)
                return None
            self._entries.move_to_end(key)
            return found[1]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._put(key, value)

    def claim(self, key: Any, ttl: float) -> bool:
        """Mark `key` now and say True, unless it was marked less than `ttl` ago."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None and time.monotonic() - found[0] <= ttl:
                return False
            self._put(key, True)
            return True

    def _put(self, key: Any, value: Any) -> None:
        self._entries[key] = (time.monotonic(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def pop(self, key: Any) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_keys = TTLCache()
_workspaces = TTLCache()
_memberships = TTLCache(max_entries=4096)
_partners = TTLCache()
_used = TTLCache(max_entries=4096)
_NOT_A_MEMBER = ""


def bearer_token(headers: Any) -> str:
    header = headers.get("authorization")
    if not header:
        raise Unauthorized("Missing Authorization header: send 'Authorization: Bearer <key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("The Authorization header must be 'Bearer <key>'")
    return token


def workspace_named(headers: Any) -> str | None:
    """The workspace X-Workspace-ID names, if any; the header sent empty names none,
    which is a malformed request rather than its absence."""
    named = headers.get(WORKSPACE_HEADER)
    if named is None:
        return None
    if not named.strip():
        raise BadRequest("The X-Workspace-ID header is empty: name a workspace or omit it")
    return named.strip()


def identify(token: str) -> Principal:
    """The principal a token stands for, before any workspace is chosen."""
    if token.startswith("sk_"):
        if tokens.split(token) is None:
            raise Unauthorized("The API key is malformed or its checksum is wrong")
        record = _verified_key(tokens.hash_key(token))
        _note_use(record)
        if record.get("partner_id"):
            return _partner_principal(record)
        return _workspace_key_principal(record)
    if oidc.looks_like_jwt(token):
        subject = oidc.verify(token)["sub"]
        return Principal(kind="user", id=f"user:{subject}", user_id=subject, scopes=())
    raise Unauthorized("The token is neither a Shipyard API key nor a JWT")


def act_in(principal: Principal, workspace_id: str) -> Principal:
    """The principal acting in `workspace_id`, with its scopes there; NotFound when it
    cannot act there, so that other tenants' workspaces are not revealed."""
    if principal.kind == "workspace_key":
        if principal.workspace_id != workspace_id:
            raise NotFound("Workspace")
        return principal
    if principal.kind == "partner_key":
        workspace = cached_workspace(workspace_id)
        if workspace is None or workspace.get("partner_id") != principal.partner_id:
            raise NotFound("Workspace")
        return replace(principal, workspace_id=workspace_id, tier=workspace.get("tier", "free"))
    role = cached_role(workspace_id, principal.user_id or "")
    workspace = cached_workspace(workspace_id) if role else None
    if workspace is None or role is None:
        raise NotFound("Workspace")
    return replace(
        principal,
        workspace_id=workspace_id,
        tier=workspace.get("tier", "free"),
        role=role,
        scopes=ROLES[role],
    )


def _workspace_key_principal(record: dict[str, Any]) -> Principal:
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


def _partner_principal(record: dict[str, Any]) -> Principal:
    partner = cached_partner(record["partner_id"])
    if partner is None:
        raise Unauthorized("The partner of this key no longer exists")
    return Principal(
        kind="partner_key",
        id=partner["id"],
        partner_id=partner["id"],
        key_id=record["id"],
        scopes=tuple(record.get("scopes", [])),
        tier=partner.get("tier", "free"),
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


def _note_use(record: dict[str, Any]) -> None:
    """Write `last_used_at` at most once per `last_used_interval_s` per key and process,
    so that using a key costs no write."""
    if _used.claim(record["key_hash"], get_settings().last_used_interval_s):
        key_store.touch(record["key_hash"], now_iso())


def cached_workspace(workspace_id: str) -> dict[str, Any] | None:
    ttl = get_settings().key_cache_ttl_s
    workspace = _workspaces.get(workspace_id, ttl)
    if workspace is None:
        workspace = workspace_store.get_workspace(workspace_id)
        if workspace is not None:
            _workspaces.put(workspace_id, workspace)
    return workspace


def cached_role(workspace_id: str, user_id: str) -> str | None:
    """The user's role in the workspace; refusals are cached too, so probing costs no reads."""
    ttl = get_settings().key_cache_ttl_s
    role = _memberships.get((workspace_id, user_id), ttl)
    if role is None:
        found = workspace_store.get_membership(workspace_id, user_id) if user_id else None
        role = found["role"] if found else _NOT_A_MEMBER
        _memberships.put((workspace_id, user_id), role)
    return role or None


def cached_partner(partner_id: str) -> dict[str, Any] | None:
    ttl = get_settings().key_cache_ttl_s
    partner = _partners.get(partner_id, ttl)
    if partner is None:
        partner = workspace_store.get_partner(partner_id)
        if partner is not None:
            _partners.put(partner_id, partner)
    return partner


def forget_key(key_hash: str) -> None:
    """Evict a key revoked or rotated by this process, so the change applies at once."""
    _keys.pop(key_hash)


def forget_workspace(workspace_id: str) -> None:
    _workspaces.pop(workspace_id)


def forget_membership(workspace_id: str, user_id: str) -> None:
    _memberships.pop((workspace_id, user_id))


def forget_cached() -> None:
    for cache in (_keys, _workspaces, _memberships, _partners, _used):
        cache.clear()
    oidc.jwks.clear()
