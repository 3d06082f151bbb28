"""Deploy hooks: secret URLs that start a deployment of one project with no other
credential (for CI systems). The token is shown once, in the answer that creates the hook;
only its SHA-256 is stored, and it is the key the hook is found by. Storage is in
store/hooks.py; what a call of the URL deploys is pipeline/hooks.py's."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from chalicelib.core import ids
from chalicelib.core.clock import now_iso
from chalicelib.core.errors import NotFound, ValidationFailed
from chalicelib.core.pagination import Page
from chalicelib.deployments.models import DeployHook, DeployHookCreate, DeployHookWithUrl
from chalicelib.git.refs import BadRef, check_ref
from chalicelib.store import hooks as store
from chalicelib.store import projects as project_store

TOKEN_PREFIX = "dh_"
PATH = "/v1/hooks/deploy/"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def to_model(item: dict[str, Any]) -> DeployHook:
    return DeployHook(
        id=item["id"],
        project_id=item["project_id"],
        name=item["name"],
        ref=item.get("ref"),
        created_at=item["created_at"],
        last_used_at=item.get("last_used_at"),
    )


def create(
    workspace_id: str, project_id: str, body: DeployHookCreate, base_url: str
) -> DeployHookWithUrl:
    project_store.get(workspace_id, project_id)
    if body.ref is not None:
        try:
            check_ref(body.ref)
        except BadRef as error:
            raise ValidationFailed({"ref": [str(error)]}) from None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    item = {
        "token_hash": token_hash(token),
        "id": ids.new_id("hook"),
        "project_id": project_id,
        "workspace_id": workspace_id,
        "name": body.name,
        "ref": body.ref,
        "created_at": now_iso(),
    }
    store.put_hook({k: v for k, v in item.items() if v is not None})
    url = base_url.rstrip("/") + PATH + token
    return DeployHookWithUrl(**to_model(item).model_dump(), url=url)


def list_hooks(workspace_id: str, project_id: str, limit: int, start: dict | None) -> Page:
    project_store.get(workspace_id, project_id)
    items, next_key = store.hooks_of_project(project_id, limit, start)
    return Page([to_model(i) for i in items], next_key, list_name(project_id), workspace_id)


def list_name(project_id: str) -> str:
    return f"deploy-hooks:{project_id}"


def delete(workspace_id: str, project_id: str, hook_id: str) -> None:
    project_store.get(workspace_id, project_id)
    item = store.hook_of_project(project_id, hook_id) if ids.could_be("hook", hook_id) else None
    if item is None or item["workspace_id"] != workspace_id:
        raise NotFound("Deploy hook")
    store.delete_hook(item["token_hash"])


def by_token(token: str) -> dict[str, Any]:
    """The hook a secret URL's token names, or 404 (unknown, deleted, or malformed)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        raise NotFound("Deploy hook")
    item = store.hook_by_token_hash(token_hash(token))
    if item is None:
        raise NotFound("Deploy hook")
    return item
