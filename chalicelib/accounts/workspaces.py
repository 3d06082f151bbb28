"""Workspaces: the tenants. Every other resource belongs to exactly one.

Who may do what here (the routes of /v1/workspaces name the workspace in the path, so
X-Workspace-ID plays no part in them):
- a workspace key sees and changes only its own workspace (`workspaces:read|write`),
  and can neither create nor delete workspaces;
- a partner key creates workspaces and does everything to those it created;
- a user creates workspaces (becoming their owner) and acts in those they are a member
  of with their role's scopes; only the `owner` role holds `workspaces:write`.
A workspace's tier is set only by a partner key (or the operator's admin command).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.core import ids
from chalicelib.core.clock import now_iso
from chalicelib.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from chalicelib.core.models import Workspace, WorkspaceCreate, WorkspaceUpdate
from chalicelib.core.pagination import Page
from chalicelib.core.scopes import ALL
from chalicelib.core.slugs import slugify
from chalicelib.identity import auth, keys
from chalicelib.identity.principal import Principal
from chalicelib.projects import service as projects
from chalicelib.store import keys as key_store
from chalicelib.store import projects as project_store
from chalicelib.store import workspaces as store
from chalicelib.store.errors import Missing
from chalicelib.webhooks import endpoints as webhook_endpoints

LIST_NAME = "workspaces"
DEFAULT_TIER = "free"
MAX_SETTINGS = 50


def settings_of(item: dict[str, Any]) -> dict[str, Any]:
    """A workspace's settings. They are stored as JSON text, so that any JSON the API
    accepts is kept as sent: DynamoDB's own maps refuse empty keys, deep nesting and
    numbers beyond 38 digits. (Items written before that hold a map.)"""
    stored = item.get("settings") or {}
    return json.loads(stored) if isinstance(stored, str) else stored


def to_model(item: dict[str, Any]) -> Workspace:
    return Workspace(
        id=item["id"],
        name=item["name"],
        slug=item["slug"],
        tier=item.get("tier", DEFAULT_TIER),
        settings=settings_of(item),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
    )


def create(
    name: str,
    tier: str = DEFAULT_TIER,
    partner_id: str | None = None,
    *,
    slug: str | None = None,
    settings: dict[str, Any] | None = None,
    owner_user_id: str | None = None,
) -> dict[str, Any]:
    """A workspace, and with `owner_user_id` its owner's membership, written together."""
    now = now_iso()
    item = {
        "id": ids.new_id("ws"),
        "name": name,
        "slug": slug or slugify(name, "workspace"),
        "tier": tier,
        "settings": json.dumps(settings or {}),
        "partner_id": partner_id,
        "active_keys": 0,
        "revision": 0,
        "created_at": now,
        "updated_at": now,
    }
    store.create_workspace(item, owner_user_id)
    return item


def create_with_key(name: str, tier: str = DEFAULT_TIER) -> tuple[dict[str, Any], str]:
    """A workspace and its first, all-scopes key (the admin command, the local stack)."""
    workspace = create(name, tier)
    _, secret = keys.issue(name="Initial key", scopes=[ALL], workspace_id=workspace["id"])
    return workspace, secret


def create_for(principal: Principal, body: WorkspaceCreate) -> Workspace:
    if principal.kind == "workspace_key":
        raise Forbidden(
            "workspaces:write",
            "Workspaces are created with a partner key or a user token, not a workspace key",
        )
    _check_tier_change(principal, body.tier, DEFAULT_TIER)
    settings = {k: v for k, v in (body.settings or {}).items() if v is not None}
    item = create(
        body.name,
        body.tier or DEFAULT_TIER,
        principal.partner_id if principal.kind == "partner_key" else None,
        slug=body.slug,
        settings=settings,
        owner_user_id=principal.user_id if principal.kind == "user" else None,
    )
    return to_model(item)


def _check_tier_change(principal: Principal, wanted: str | None, current: str) -> None:
    if wanted is not None and wanted != current and principal.kind != "partner_key":
        raise Forbidden("workspaces:write", "Only a partner key can set a workspace's tier")


def _acting(principal: Principal, workspace_id: str, scope: str) -> Principal:
    acting = auth.act_in(principal, workspace_id)
    acting.require(scope)
    return acting


def list_for(principal: Principal, limit: int, start: dict[str, Any] | None) -> Page:
    """The workspaces the principal can act in, newest first."""
    if principal.kind == "workspace_key":
        principal.require("workspaces:read")
        own = store.get_workspace(principal.workspace_id or "")
        return Page([to_model(own)] if own else [], None, LIST_NAME, principal.id)
    if principal.kind == "partner_key":
        items, next_key = store.list_by_partner(principal.partner_id or "", limit, start)
        return Page([to_model(i) for i in items], next_key, LIST_NAME, principal.id)
    members, next_key = store.list_memberships_of_user(principal.user_id or "", limit, start)
    found = store.get_workspaces([m["workspace_id"] for m in members])
    listed = [to_model(found[m["workspace_id"]]) for m in members if m["workspace_id"] in found]
    return Page(listed, next_key, LIST_NAME, principal.id)


def get(principal: Principal, workspace_id: str) -> Workspace:
    _acting(principal, workspace_id, "workspaces:read")
    workspace = store.get_workspace(workspace_id)
    if workspace is None:
        raise NotFound("Workspace")
    return to_model(workspace)


def update(principal: Principal, workspace_id: str, body: WorkspaceUpdate) -> Workspace:
    _acting(principal, workspace_id, "workspaces:write")
    current = store.get_workspace(workspace_id)
    if current is None:
        raise NotFound("Workspace")
    _check_tier_change(principal, body.tier, current.get("tier", DEFAULT_TIER))
    changes: dict[str, Any] = {}
    for field in ("name", "slug", "tier"):
        if getattr(body, field) is not None:
            changes[field] = getattr(body, field)
    if body.settings is not None:
        # Merged like Stripe's metadata: a key set to null is removed.
        settings = {**settings_of(current), **body.settings}
        settings = {k: v for k, v in settings.items() if v is not None}
        if len(settings) > MAX_SETTINGS:
            raise ValidationFailed({"settings": [f"at most {MAX_SETTINGS} keys in all"]})
        changes["settings"] = json.dumps(settings)
    if not changes:
        return to_model(current)
    changes["updated_at"] = now_iso()
    if not store.update_workspace(workspace_id, changes, current.get("revision", 0)):
        raise Conflict("The workspace changed while it was being updated; retry")
    auth.forget_workspace(workspace_id)
    return to_model({**current, **changes})


def delete(principal: Principal, workspace_id: str) -> None:
    """Revoke the workspace's keys, delete its projects, webhooks (with their deliveries)
    and memberships, then the workspace. Each step is repeatable, so a DELETE that failed
    half-way can be retried."""
    if principal.kind == "workspace_key":
        auth.act_in(principal, workspace_id)
        raise Forbidden(
            "workspaces:write",
            "A workspace key can't delete its workspace; use a partner key or the owner's token",
        )
    _acting(principal, workspace_id, "workspaces:write")
    for key in key_store.owned(workspace_id):
        try:
            keys.revoke_record(key)
        except Missing:
            continue
    for project_id in project_store.ids_in(workspace_id):
        try:
            projects.delete(workspace_id, project_id)
        except Missing:
            continue
    webhook_endpoints.purge_workspace(workspace_id)
    store.mark_deleted(workspace_id, now_iso())
    auth.forget_workspace(workspace_id)
    for member in store.members_of(workspace_id):
        store.delete_membership(workspace_id, member["user_id"])
        auth.forget_membership(workspace_id, member["user_id"])


def add_member(workspace_id: str, user_id: str, role: str) -> None:
    """Make a user (a JWT `sub`) a member of a workspace, or change their role."""
    if store.get_workspace(workspace_id) is None:
        raise NotFound("Workspace")
    store.put_membership(workspace_id, user_id, role, now_iso())
    auth.forget_membership(workspace_id, user_id)


def remove_member(workspace_id: str, user_id: str) -> None:
    if not store.delete_membership(workspace_id, user_id):
        raise NotFound("Membership")
    auth.forget_membership(workspace_id, user_id)
