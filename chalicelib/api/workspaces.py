"""Routes of /v1/workspaces. They name their workspace in the path (or list several),
so they need no X-Workspace-ID; accounts/workspaces.py decides who may do what."""

from __future__ import annotations

from chalicelib.accounts import workspaces
from chalicelib.api.http import RequestContext, Router
from chalicelib.core.models import Workspace, WorkspaceCreate, WorkspaceUpdate

router = Router(__name__, "workspaces")


@router.route("/v1/workspaces", "GET", response=list[Workspace], workspace=False)
def list_workspaces(ctx: RequestContext):
    """List the workspaces this credential can act in, newest first."""
    limit, start = ctx.page_params(workspaces.LIST_NAME, ctx.principal.id)
    return workspaces.list_for(ctx.principal, limit, start)


@router.route(
    "/v1/workspaces",
    "POST",
    body=WorkspaceCreate,
    response=Workspace,
    status=201,
    workspace=False,
    errors=(403,),
)
def create_workspace(ctx: RequestContext):
    """Create a workspace (partner keys and user tokens)."""
    return workspaces.create_for(ctx.principal, ctx.body)


@router.route("/v1/workspaces/{workspace_id}", "GET", response=Workspace, workspace=False)
def get_workspace(ctx: RequestContext, workspace_id: str):
    """Get a workspace."""
    return workspaces.get(ctx.principal, workspace_id)


@router.route(
    "/v1/workspaces/{workspace_id}",
    "PATCH",
    body=WorkspaceUpdate,
    response=Workspace,
    workspace=False,
    errors=(403, 409),
)
def update_workspace(ctx: RequestContext, workspace_id: str):
    """Rename a workspace or change its settings (and, for partners, its tier)."""
    return workspaces.update(ctx.principal, workspace_id, ctx.body)


@router.route("/v1/workspaces/{workspace_id}", "DELETE", status=204, workspace=False, errors=(403,))
def delete_workspace(ctx: RequestContext, workspace_id: str):
    """Delete a workspace: its keys are revoked and its projects deleted."""
    workspaces.delete(ctx.principal, workspace_id)
