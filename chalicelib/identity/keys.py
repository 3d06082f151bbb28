"""API keys: issuing, listing, rotating and revoking them, and the active-key limit.

The key itself is returned once and stored only as SHA-256. A workspace holds at most
its tier's number of active keys: a key is active from creation until it is revoked,
rotated (its successor takes its place) or expires. store/keys.py keeps the count exact.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.core import ids
from chalicelib.core.clock import now_iso, parse_rfc3339, rfc3339, utcnow
from chalicelib.core.errors import (
    FeatureLimitReached,
    Forbidden,
    InvalidState,
    NotFound,
    ValidationFailed,
)
from chalicelib.core.models import ApiKey, ApiKeyCreate, ApiKeyWithSecret
from chalicelib.core.pagination import Page
from chalicelib.core.tiers import TIERS
from chalicelib.identity import auth, tokens
from chalicelib.identity.principal import Principal
from chalicelib.store import keys as store
from chalicelib.store import workspaces as workspace_store

LIST_NAME = "api-keys"
FEATURE = "api_keys"


def issue(
    *,
    name: str,
    scopes: list[str],
    workspace_id: str | None = None,
    partner_id: str | None = None,
    expires_at: str | None = None,
    created_by: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Create a key for a workspace (`sk_live_`, counted against its limit) or a partner
    (`sk_partner_`). Returns the stored record and the key, which is never available again."""
    record, secret = _new_record(
        name=name,
        scopes=scopes,
        workspace_id=workspace_id,
        partner_id=partner_id,
        expires_at=expires_at,
        created_by=created_by,
    )
    if partner_id:
        store.put_key(record)
    else:
        _put_counted(record)
    return record, secret


def _new_record(
    *,
    name: str,
    scopes: list[str],
    workspace_id: str | None,
    partner_id: str | None = None,
    expires_at: str | None,
    created_by: str | None,
) -> tuple[dict[str, Any], str]:
    prefix = tokens.PARTNER_PREFIX if partner_id else tokens.WORKSPACE_PREFIX
    secret = tokens.generate(prefix)
    record = {
        "key_hash": tokens.hash_key(secret),
        "id": ids.new_id("key"),
        "owner_id": partner_id or workspace_id,
        "workspace_id": workspace_id,
        "partner_id": partner_id,
        "name": name,
        "prefix": tokens.display_prefix(secret),
        "scopes": list(dict.fromkeys(scopes)),
        "expires_at": expires_at,
        "created_by": created_by,
        "created_at": now_iso(),
    }
    return record, secret


def _put_counted(record: dict[str, Any]) -> None:
    workspace_id = record["workspace_id"]
    workspace = workspace_store.get_workspace(workspace_id)
    if workspace is None:
        raise NotFound("Workspace")
    limit = TIERS[workspace.get("tier", "free")].api_keys
    for attempt in range(2):
        if store.put_counted_key(record, limit):
            return
        # Full (or gone): slots of keys that have expired since are given back, once.
        if attempt == 0 and _release_expired(workspace_id):
            continue
        used = store.active_count(workspace_id)
        if workspace_store.get_workspace(workspace_id) is None:
            raise NotFound("Workspace")
        raise FeatureLimitReached(FEATURE, limit, used)


def _release_expired(workspace_id: str) -> bool:
    now = now_iso()
    released = False
    for item in store.owned(workspace_id):
        expires_at = item.get("expires_at")
        if item.get("counted") and expires_at and expires_at <= now:
            released = store.release_expired(item, now) or released
    return released


def active_count(workspace_id: str) -> int:
    """How many of the workspace's keys count against its limit now (usage reads this)."""
    _release_expired(workspace_id)
    return store.active_count(workspace_id)


def to_model(item: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=item["id"],
        name=item["name"],
        prefix=item["prefix"],
        scopes=item.get("scopes", []),
        expires_at=item.get("expires_at"),
        last_used_at=item.get("last_used_at"),
        created_at=item["created_at"],
    )


def _with_secret(item: dict[str, Any], secret: str) -> ApiKeyWithSecret:
    return ApiKeyWithSecret(**to_model(item).model_dump(), key=secret)


def _check_grantable(principal: Principal, scopes: list[str]) -> None:
    missing = principal.missing_scopes(scopes)
    if missing:
        raise Forbidden(
            missing[0],
            f"A key can't be given the scope {missing[0]}, which this credential lacks",
        )


def create(principal: Principal, body: ApiKeyCreate) -> ApiKeyWithSecret:
    _check_grantable(principal, body.scopes)
    expires_at = None
    if body.expires_at is not None:
        if body.expires_at <= utcnow():
            raise ValidationFailed({"expires_at": ["must be in the future"]})
        expires_at = rfc3339(body.expires_at)
    record, secret = issue(
        name=body.name,
        scopes=list(body.scopes),
        workspace_id=principal.workspace_id,
        expires_at=expires_at,
        created_by=principal.id,
    )
    return _with_secret(record, secret)


def _owned(workspace_id: str, key_id: str) -> dict[str, Any]:
    item = store.get_by_id(key_id)
    if item is None or item.get("owner_id") != workspace_id or item.get("revoked_at"):
        raise NotFound("API key")
    return item


def list_keys(workspace_id: str, limit: int, start: dict[str, Any] | None) -> Page:
    items, next_key = store.list_page(workspace_id, limit, start)
    return Page([to_model(item) for item in items], next_key, LIST_NAME, workspace_id)


def get(workspace_id: str, key_id: str) -> ApiKey:
    return to_model(_owned(workspace_id, key_id))


def revoke(workspace_id: str, key_id: str) -> None:
    revoke_record(_owned(workspace_id, key_id))


def revoke_record(item: dict[str, Any]) -> None:
    store.revoke(item, now_iso())
    auth.forget_key(item["key_hash"])


def rotate(principal: Principal, key_id: str, grace_period_hours: int) -> ApiKeyWithSecret:
    """A new key with the same name, scopes and expiry; the old one keeps working for
    the grace period (not at all with 0) and gives its slot to the new one at once."""
    old = _owned(principal.workspace_id or "", key_id)
    now = utcnow()
    expires_at = old.get("expires_at")
    if expires_at and parse_rfc3339(expires_at) <= now:
        raise InvalidState("The API key has expired; create a new one instead")
    if old.get("replaced_by"):
        raise InvalidState("The API key has already been rotated")
    # Rotating hands out a new secret with the key's scopes: only to those who hold them.
    _check_grantable(principal, old.get("scopes", []))
    grace_end = now + timedelta(hours=grace_period_hours)
    if expires_at:
        grace_end = min(grace_end, parse_rfc3339(expires_at))
    new, secret = _new_record(
        name=old["name"],
        scopes=old.get("scopes", []),
        workspace_id=old["workspace_id"],
        expires_at=expires_at,
        created_by=principal.id,
    )
    if not store.rotate(old, new, rfc3339(grace_end), rfc3339(now)):
        raise InvalidState("The API key has already been rotated")
    auth.forget_key(old["key_hash"])
    return _with_secret(new, secret)
