"""Incoming hooks, from CI: GitHub's push webhook and deploy hooks' secret URLs.

GitHub (`POST /v1/hooks/github`): the projects of the payload's repository are found with
one Query (store/projects.py `with_repository`, on `repository.full_name` and
`repository.clone_url`), and the body's `X-Hub-Signature-256` is checked against each
one's webhook secret in constant time. A missing or wrong signature and an unknown
repository are the same 401, so nothing tells a caller which repositories exist. A
delivery id is claimed once (kept 4 days): GitHub's redelivery of it starts nothing new,
unless the first delivery was refused before it did anything (then the claim is given back).

Deploy hooks (`POST /v1/hooks/deploy/{token}`): rate-limited per hook, counted against the
workspace's daily deployments like any deployment; they deploy the project's git branch
(or the hook's ref), or rebuild the latest upload of a project without git.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from chalicelib.core.clock import now_iso
from chalicelib.core.errors import NotFound, PayloadTooLarge, Unauthorized
from chalicelib.core.settings import get_settings
from chalicelib.deployments import hooks as deploy_hooks
from chalicelib.deployments.models import Deployment
from chalicelib.git import repository as repositories
from chalicelib.git.refs import SHA, BadRef, branch_of, check_ref
from chalicelib.git.remote import Resolved
from chalicelib.identity import ratelimit
from chalicelib.identity.principal import Principal
from chalicelib.pipeline import actions
from chalicelib.projects import service as projects
from chalicelib.store import hooks as hook_store
from chalicelib.store import projects as project_store
from chalicelib.store import workspaces as workspace_store

DELIVERY_KEEP_S = 4 * 24 * 3600  # GitHub redelivers for up to 3 days
# A deploy hook's own bucket: CI calls it once per pipeline run, not in bursts.
HOOK_RATE = ratelimit.Policy(per_minute=10, burst=0.0)
BAD_SIGNATURE = "The X-Hub-Signature-256 signature is missing or does not match"


def _tier(workspace_id: str) -> str:
    workspace = workspace_store.get_workspace(workspace_id)
    return workspace["tier"] if workspace else "free"


def signature_of(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _verified_projects(payload: Any, body: bytes, signature: str) -> list[dict[str, Any]]:
    """The projects of the payload's repository whose secret signed this body."""
    repository = payload.get("repository") if isinstance(payload, dict) else None
    if not isinstance(repository, dict):
        return []
    keys = set()
    for name in ("full_name", "clone_url"):
        value = repository.get(name)
        if isinstance(value, str) and len(value) < 1000:
            keys.add(repositories.match_key(value))
    found: dict[str, dict[str, Any]] = {}
    for key in sorted(keys):
        for project in project_store.with_repository(key):
            found[project["id"]] = project
    # As bytes: compare_digest refuses str holding anything but ASCII, and a forged header
    # may hold anything.
    given = signature.encode("utf-8", "surrogateescape")
    verified = []
    for project in found.values():
        secret = projects.webhook_secret(project)
        if secret and hmac.compare_digest(signature_of(secret, body).encode(), given):
            verified.append(project)
    return verified


def github(event: str, delivery: str, signature: str, body: bytes, payload: Any) -> dict:
    """One GitHub delivery: (what was done, the deployments made) as the answer's data."""
    if len(body) > get_settings().max_body_bytes:
        raise PayloadTooLarge(f"Payloads above {get_settings().max_body_bytes} bytes are refused")
    verified = _verified_projects(payload, body, signature) if signature else []
    if not verified:
        raise Unauthorized(BAD_SIGNATURE)
    if event == "ping":
        return {"status": "pong", "deployments": []}
    claim = f"delivery#{delivery[:100]}" if delivery else None
    if claim and hook_store.claim(claim, DELIVERY_KEEP_S) is not None:
        return {"status": "duplicate", "deployments": []}
    if event != "push":
        return {"status": "ignored", "deployments": []}
    branch = branch_of(str(payload.get("ref") or ""))
    if branch is None:
        return {"status": "ignored", "deployments": []}
    made: list[Deployment] = []
    try:
        stopped = _push(verified, payload, branch, made)
    except Exception:
        # Refused before it made a deployment (a quota, a full queue, an outage): GitHub's
        # "Redeliver" of this delivery must be able to make it, so the claim is given back.
        # (Stopping a deleted branch's previews again is harmless.)
        if claim and not made:
            hook_store.release(claim)
        raise
    # A push that made nothing (a branch refused by its name, no commit) started nothing.
    status = "deploying" if made else "ignored"
    if payload.get("deleted"):
        status = "stopped_previews"
    return {"status": status, "stopped": stopped, "deployments": made}


def _push(verified: list[dict[str, Any]], payload: dict, branch: str, made: list) -> int:
    """Deploy (or, for a deleted branch, stop the previews of) each verified project;
    appends the deployments to `made` as they are made, returns how many were stopped."""
    stopped = 0
    for project in verified:
        if payload.get("deleted"):
            if branch != project["git"]["branch"]:
                stopped += actions.stop_preview(project, branch)
            continue
        after = str(payload.get("after") or "")
        if not SHA.match(after):
            continue
        try:
            check_ref(branch)
        except BadRef:
            continue
        head = payload.get("head_commit") if isinstance(payload.get("head_commit"), dict) else {}
        message = str(head.get("message") or "").split("\n", 1)[0][:300] or None
        made.append(
            actions.deploy_git(
                project["workspace_id"],
                _tier(project["workspace_id"]),
                project,
                branch,
                None,
                "github",
                pushed=Resolved(branch, after, branch),
                message=message,
            )
        )
    return stopped


def deploy_hook(token: str) -> Deployment:
    """A call of a deploy hook's secret URL."""
    hook = deploy_hooks.by_token(token)
    workspace_id = hook["workspace_id"]
    tier = _tier(workspace_id)
    ratelimit.check(Principal("deploy_hook", hook["id"], (), workspace_id, tier), HOOK_RATE)
    try:
        project = project_store.get(workspace_id, hook["project_id"])
    except Exception:
        raise NotFound("Deploy hook") from None
    hook_store.touch_hook(hook["token_hash"], now_iso())
    git = project.get("git")
    if git:
        ref = hook.get("ref") or git["branch"]
        return actions.deploy_git(workspace_id, tier, project, ref, None, "deploy_hook")
    return actions.rebuild_latest_upload(workspace_id, tier, project)
