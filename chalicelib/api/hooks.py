"""Routes of incoming hooks (GitHub pushes, deploy hooks' secret URLs, which carry no
bearer credential: their signature or their token is the credential), of a project's
deploy hooks, and of detect."""

from __future__ import annotations

from chalicelib.api.http import RequestContext, Router, json_response, load_json
from chalicelib.core.errors import ApiError, PayloadTooLarge
from chalicelib.core.settings import get_settings
from chalicelib.deployments import hooks as deploy_hooks
from chalicelib.deployments.models import (
    DeployHook,
    DeployHookCreate,
    DeployHookWithUrl,
    Deployment,
    Detection,
    DetectRequest,
)
from chalicelib.pipeline import detect as detection
from chalicelib.pipeline import hooks

router = Router(__name__, "hooks")
HOOKS = "/v1/projects/{project_id}/deploy-hooks"


@router.route(
    "/v1/hooks/github",
    "POST",
    auth=False,
    workspace=False,
    status=202,
    # 200: a ping; 401: no project's secret signed it; the rest from the deployments it makes.
    errors=(200, 401, 403, 409, 413, 429, 503),
)
def github_push(ctx: RequestContext):
    """GitHub's push webhook: signed with the project's git.webhook_secret (X-Hub-Signature-256)."""
    raw = ctx.request.raw_body or b""
    if len(raw) > get_settings().max_body_bytes:
        raise PayloadTooLarge(f"Payloads above {get_settings().max_body_bytes} bytes are refused")
    try:
        payload = load_json(raw)
    except ApiError:
        payload = None
    headers = ctx.headers
    result = hooks.github(
        (headers.get("x-github-event") or "").strip(),
        (headers.get("x-github-delivery") or "").strip(),
        (headers.get("x-hub-signature-256") or "").strip(),
        raw,
        payload,
    )
    status = 200 if result["status"] == "pong" else 202
    body = {
        **result,
        "deployments": [d.model_dump(mode="json") for d in result["deployments"]],
    }
    return json_response({"data": body}, status)


@router.route(
    "/v1/hooks/deploy/{token}",
    "POST",
    auth=False,
    workspace=False,
    response=Deployment,
    status=202,
    errors=(403, 409, 429, 503),
)
def call_deploy_hook(ctx: RequestContext, token: str):
    """A deploy hook's secret URL: deploys the git branch, or rebuilds the latest upload."""
    return hooks.deploy_hook(token)


@router.route(HOOKS, "GET", scope="projects:read", response=list[DeployHook])
def list_deploy_hooks(ctx: RequestContext, project_id: str):
    """List a project's deploy hooks (their URLs are never shown again)."""
    limit, start = ctx.page_params(deploy_hooks.list_name(project_id), ctx.workspace_id)
    return deploy_hooks.list_hooks(ctx.workspace_id, project_id, limit, start)


@router.route(
    HOOKS,
    "POST",
    scope="projects:write",
    body=DeployHookCreate,
    response=DeployHookWithUrl,
    status=201,
    secret=True,
)
def create_deploy_hook(ctx: RequestContext, project_id: str):
    """Create a deploy hook: its secret URL is in this answer only."""
    return deploy_hooks.create(ctx.workspace_id, project_id, ctx.body, _public_base(ctx))


def _public_base(ctx: RequestContext) -> str:
    """Where this API is reached from outside: API Gateway's domain and stage on AWS (the
    deploy hook's URL must work from a CI runner), else SHIPYARD_PUBLIC_URL."""
    context = getattr(ctx.request, "context", None) or {}
    domain, stage = context.get("domainName"), context.get("stage")
    if domain and stage and "amazonaws.com" in domain:
        return f"https://{domain}/{stage}"
    return get_settings().public_url


@router.route(HOOKS + "/{hook_id}", "DELETE", scope="projects:write", status=204)
def delete_deploy_hook(ctx: RequestContext, project_id: str, hook_id: str):
    """Delete a deploy hook: its URL answers 404 from now on."""
    deploy_hooks.delete(ctx.workspace_id, project_id, hook_id)


@router.route(
    "/v1/projects/detect", "POST", scope="projects:read", body=DetectRequest, response=Detection
)
def detect(ctx: RequestContext):
    """The build plan a deployment would use, from an upload or a git ref, without deploying."""
    return detection.detect(ctx.workspace_id, ctx.body)
