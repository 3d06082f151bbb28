"""Workspaces: the tenants. Every other resource belongs to exactly one."""

from __future__ import annotations

from typing import Any

from chalicelib import ids, keys
from chalicelib.clock import now_iso
from chalicelib.projects import slugify
from chalicelib.store import workspaces as store


def create(name: str, tier: str = "free", partner_id: str | None = None) -> dict[str, Any]:
    now = now_iso()
    item = {
        "id": ids.new_id("ws"),
        "name": name,
        "slug": slugify(name),
        "tier": tier,
        "settings": {},
        "partner_id": partner_id,
        "created_at": now,
        "updated_at": now,
    }
    store.put_workspace(item)
    return item


def create_with_key(name: str, tier: str = "free") -> tuple[dict[str, Any], str]:
    """A workspace and its first, all-scopes key (the admin command, the local stack)."""
    workspace = create(name, tier)
    _, secret = keys.issue(name="Initial key", scopes=["*"], workspace_id=workspace["id"])
    return workspace, secret
