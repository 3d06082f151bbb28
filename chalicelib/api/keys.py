"""Routes of /v1/api-keys and /v1/auth/me."""

from __future__ import annotations

from chalicelib.accounts.workspaces import to_model as workspace_model
from chalicelib.api.http import RequestContext, Router
from chalicelib.core.models import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyRotate,
    ApiKeyWithSecret,
    Me,
    PrincipalInfo,
    RateLimitInfo,
)
from chalicelib.core.tiers import TIERS
from chalicelib.identity import auth, keys

router = Router(__name__, "api-keys")


@router.route("/v1/api-keys", "GET", scope="api-keys:read", response=list[ApiKey])
def list_keys(ctx: RequestContext):
    """List the workspace's API keys (not revoked), newest first; never the keys themselves."""
    limit, start = ctx.page_params(keys.LIST_NAME, ctx.workspace_id)
    return keys.list_keys(ctx.workspace_id, limit, start)


@router.route(
    "/v1/api-keys",
    "POST",
    scope="api-keys:write",
    body=ApiKeyCreate,
    response=ApiKeyWithSecret,
    status=201,
    secret=True,
)
def create_key(ctx: RequestContext):
    """Create an API key; the key is in this response only."""
    return keys.create(ctx.principal, ctx.body)


@router.route("/v1/api-keys/{key_id}", "GET", scope="api-keys:read", response=ApiKey)
def get_key(ctx: RequestContext, key_id: str):
    """Get an API key (its prefix, never the key)."""
    return keys.get(ctx.workspace_id, key_id)


@router.route("/v1/api-keys/{key_id}", "DELETE", scope="api-keys:write", status=204)
def revoke_key(ctx: RequestContext, key_id: str):
    """Revoke an API key: it is refused from now on."""
    keys.revoke(ctx.workspace_id, key_id)


@router.route(
    "/v1/api-keys/{key_id}/rotate",
    "POST",
    scope="api-keys:write",
    body=ApiKeyRotate,
    response=ApiKeyWithSecret,
    status=201,
    secret=True,
)
def rotate_key(ctx: RequestContext, key_id: str):
    """Replace an API key by a new one; the old one works for the grace period."""
    return keys.rotate(ctx.principal, key_id, ctx.body.grace_period_hours)


@router.route("/v1/auth/me", "GET", response=Me, workspace=False)
def get_me(ctx: RequestContext):
    """Who the credential is: principal, workspace, scopes, tier and rate limit."""
    principal = ctx.principal
    workspace = auth.cached_workspace(principal.workspace_id) if principal.workspace_id else None
    tier = TIERS[principal.tier]
    return Me(
        principal=PrincipalInfo(
            type=principal.kind,
            id=principal.id,
            key_id=principal.key_id,
            partner_id=principal.partner_id,
            user_id=principal.user_id,
            role=principal.role,
        ),
        workspace=workspace_model(workspace) if workspace else None,
        scopes=list(principal.scopes),
        tier=tier.name,
        rate_limit=RateLimitInfo(
            requests_per_minute=tier.requests_per_minute,
            burst=tier.burst,
            capacity=round(tier.requests_per_minute * (1 + tier.burst)),
        ),
    )
