"""Routes of what runs: a deployment's runtime log and a project's access log."""

from __future__ import annotations

from chalice import Response

from chalicelib.api.deployments import (
    AFTER,
    DEPLOYMENT,
    LAST_EVENT_ID,
    PROJECT,
    SSE_EVENT,
    SSE_HEADERS,
    TICKET,
    after_of,
    ticket_credential,
)
from chalicelib.api.http import RequestContext, Router, integer, json_response
from chalicelib.deployments import service as deployments
from chalicelib.pipeline import live_logs
from chalicelib.store import projects as project_store

router = Router(__name__, "runtime")
PAGE_QUERY = {"after": AFTER, "limit": integer(1, 1000, 100, "Lines at most")}


def _wants_text(ctx: RequestContext) -> bool:
    accept = (ctx.headers.get("accept") or "").lower()
    return "text/plain" in accept and "application/json" not in accept


@router.route(
    DEPLOYMENT + "/runtime-logs",
    "GET",
    scope="deployments:read",
    query=PAGE_QUERY,
    headers={"Last-Event-ID": LAST_EVENT_ID},
)
def get_runtime_logs(ctx: RequestContext, project_id: str, deployment_id: str):
    """What the deployment's app printed, and the supervisor's lines; JSON, or text."""
    deployments.item_of(ctx.workspace_id, project_id, deployment_id)
    after, _ = after_of(ctx)
    limit = ctx.param("limit")
    lines, status, _ = live_logs.runtime_page(project_id, deployment_id, after, limit)
    cursor = lines[-1]["seq"] if lines else after
    if _wants_text(ctx):
        return Response(
            body=live_logs.as_text(lines),
            status_code=200,
            headers={
                "Content-Type": "text/plain; charset=utf-8",
                "X-Next-Cursor": str(cursor),
                "X-Deployment-Status": status,
            },
        )
    body = {
        "data": lines,
        "pagination": {"next_cursor": str(cursor), "has_more": len(lines) == limit},
        "status": status,
    }
    return json_response(body, 200)


@router.route(
    DEPLOYMENT + "/runtime-logs/stream",
    "GET",
    scope="deployments:read",
    query={"after": AFTER, "ticket": TICKET},
    headers={"Last-Event-ID": LAST_EVENT_ID},
    content={"text/event-stream": {"schema": SSE_EVENT}},
    credential=ticket_credential("runtime-logs"),
    errors=(204,),  # a reconnect after the done frame: the stream has ended
)
def stream_runtime_logs(ctx: RequestContext, project_id: str, deployment_id: str):
    """Server-sent events of the runtime log; `done` once the deployment has stopped."""
    deployments.item_of(ctx.workspace_id, project_id, deployment_id)
    after, resumed = after_of(ctx)
    status, body = live_logs.stream_runtime(project_id, deployment_id, after, resumed)
    return Response(body=body, status_code=status, headers=SSE_HEADERS)


@router.route(
    PROJECT + "/access-logs",
    "GET",
    scope="deployments:read",
    query=PAGE_QUERY,
)
def get_access_logs(ctx: RequestContext, project_id: str):
    """The requests the project's URL served, oldest first, after a seq."""
    project_store.get(ctx.workspace_id, project_id)
    after, _ = after_of(ctx)
    limit = ctx.param("limit")
    entries = live_logs.access_page(project_id, after, limit)
    cursor = entries[-1]["seq"] if entries else after
    body = {
        "data": entries,
        "pagination": {"next_cursor": str(cursor), "has_more": len(entries) == limit},
    }
    return json_response(body, 200)


@router.route(
    PROJECT + "/access-logs/stream",
    "GET",
    scope="deployments:read",
    query={"after": AFTER},
    headers={"Last-Event-ID": LAST_EVENT_ID},
    content={"text/event-stream": {"schema": SSE_EVENT}},
)
def stream_access_logs(ctx: RequestContext, project_id: str):
    """Server-sent events of the access log (resumable with Last-Event-ID)."""
    project_store.get(ctx.workspace_id, project_id)
    after, resumed = after_of(ctx)
    status, body = live_logs.stream_access(project_id, after, resumed)
    return Response(body=body, status_code=status, headers=SSE_HEADERS)
