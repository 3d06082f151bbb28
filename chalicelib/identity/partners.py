"""Partners: platforms that create workspaces for their own customers with one
`sk_partner_` key, and act in each with X-Workspace-ID."""

from __future__ import annotations

from typing import Any

from chalicelib.core import ids
from chalicelib.core.clock import now_iso
from chalicelib.core.scopes import ALL
from chalicelib.identity import keys
from chalicelib.store import workspaces as store


def create_with_key(name: str, tier: str = "agency") -> tuple[dict[str, Any], str]:
    """A partner and its key. `tier` sets the rate limit of the partner's requests that
    name no workspace; in a workspace, that workspace's tier applies."""
    partner = {"id": ids.new_id("ptn"), "name": name, "tier": tier, "created_at": now_iso()}
    store.put_partner(partner)
    _, secret = keys.issue(name=f"{name} partner key", scopes=[ALL], partner_id=partner["id"])
    return partner, secret
