"""API keys: issuing them. The key itself is returned once and stored only as SHA-256."""

from __future__ import annotations

from typing import Any

from chalicelib import ids, tokens
from chalicelib.clock import now_iso
from chalicelib.store import keys as store


def issue(
    *,
    name: str,
    scopes: list[str],
    workspace_id: str | None = None,
    partner_id: str | None = None,
    expires_at: str | None = None,
    created_by: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Create a key for a workspace (`sk_live_`) or a partner (`sk_partner_`).
    Returns the stored record and the key, which is never available again."""
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
        "scopes": scopes,
        "expires_at": expires_at,
        "created_by": created_by,
        "created_at": now_iso(),
    }
    store.put_key(record)
    return record, secret
