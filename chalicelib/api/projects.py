"""Routes of /v1/projects and their environment variables."""

from __future__ import annotations

from chalicelib.api.http import RequestContext, Router, choice, text
from chalicelib.core.models import (
    PROJECT_STATUSES,
    EnvUpdate,
    EnvVars,
    Project,
    ProjectCreate,
    ProjectUpdate,
)
from chalicelib.pipeline import actions
from chalicelib.projects import service as projects

router = Router(__name__, "projects")


@router.route(
    "/v1/projects",
    "GET",
    scope="projects:read",
    response=list[Project],
    query={
        "status": choice(PROJECT_STATUSES, "Only projects in this status"),
        "search": text("Name or slug contains (the first 255 characters count)"),
    },
)
def list_projects(ctx: RequestContext):
    """List projects, newest first."""
    status = ctx.param("status")
    search = (ctx.param("search") or "").strip()[:255] or None
    # A cursor continues the list it came from: the same filters, or invalid_cursor.
    limit, start = ctx.page_params(projects.list_name(status, search), ctx.workspace_id)
    return projects.list_projects(ctx.workspace_id, limit, start, status, search)


@router.route(
    "/v1/projects", "POST", scope="projects:write", body=ProjectCreate, response=Project, status=201
)
def create_project(ctx: RequestContext):
    """Create a project."""
    return actions.create_project(ctx.workspace_id, ctx.body, ctx.principal.tier)


@router.route("/v1/projects/{project_id}", "GET", scope="projects:read", response=Project)
def get_project(ctx: RequestContext, project_id: str):
    """Get a project."""
    return projects.get(ctx.workspace_id, project_id)


@router.route(
    "/v1/projects/{project_id}",
    "PATCH",
    scope="projects:write",
    body=ProjectUpdate,
    response=Project,
)
def update_project(ctx: RequestContext, project_id: str):
    """Update a project's settings."""
    return projects.update(ctx.workspace_id, project_id, ctx.body)


@router.route("/v1/projects/{project_id}", "DELETE", scope="projects:write", status=204)
def delete_project(ctx: RequestContext, project_id: str):
    """Delete a project, stopping what it runs."""
    projects.delete(ctx.workspace_id, project_id)


@router.route("/v1/projects/{project_id}/env", "GET", scope="projects:read", response=EnvVars)
def get_env(ctx: RequestContext, project_id: str):
    """List a project's environment variables (secret values are never returned)."""
    return projects.get_env(ctx.workspace_id, project_id)


@router.route(
    "/v1/projects/{project_id}/env",
    "PUT",
    scope="projects:write",
    body=EnvUpdate,
    response=EnvVars,
)
def put_env(ctx: RequestContext, project_id: str):
    """Set (upsert) environment variables."""
    return projects.put_env(ctx.workspace_id, project_id, ctx.body)


@router.route("/v1/projects/{project_id}/env/{key}", "DELETE", scope="projects:write", status=204)
def delete_env(ctx: RequestContext, project_id: str, key: str):
    """Delete one environment variable."""
    projects.delete_env(ctx.workspace_id, project_id, key)
