"""Routes of uploads, deployments, their logs, and releases."""

from __future__ import annotations

from datetime import UTC, datetime

from chalice import Response

from chalicelib.api.http import (
    Param,
    RequestContext,
    Router,
    choice,
    integer,
    json_response,
    text,
)
from chalicelib.core.clock import rfc3339
from chalicelib.core.errors import BadRequest
from chalicelib.core.models import ENVIRONMENTS
from chalicelib.deployments import logs, uploads
from chalicelib.deployments import service as deployments
from chalicelib.deployments.models import (
    Deployment,
    DeploymentCreate,
    LogPage,
    RedeployRequest,
    Release,
    RollbackRequest,
    StreamTicket,
    Upload,
    UploadCreate,
)
from chalicelib.deployments.status import STATUSES
from chalicelib.identity import tickets
from chalicelib.pipeline import actions as pipeline
from chalicelib.store import projects as project_store

router = Router(__name__, "deployments")
PROJECT = "/v1/projects/{project_id}"
DEPLOYMENT = PROJECT + "/deployments/{deployment_id}"
MAX_SEQ = 2**53
AFTER = integer(0, MAX_SEQ - 1, None, "The seq of the last line already read")
# Each event of a stream (its data is a JSON frame: contract, Logs).
SSE_EVENT = {
    "type": "object",
    "properties": {
        "data": {"type": "string", "contentMediaType": "application/json"},
        "event": {"type": "string"},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "retry": {"type": "integer", "minimum": 0},
    },
}
# An EventSource reconnecting sends the id of the last frame it saw (empty: none).
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
LAST_EVENT_ID = Param({"type": "string", "pattern": "^[0-9]{0,15}$"}, "The last seq seen")


@router.route(
    PROJECT + "/uploads",
    "POST",
    scope="deployments:write",
    body=UploadCreate,
    response=Upload,
    status=201,
)
def create_upload(ctx: RequestContext, project_id: str):
    """Get a presigned S3 POST for one archive (at most 50 MiB)."""
    project_store.get(ctx.workspace_id, project_id)
    return uploads.create(ctx.workspace_id, project_id, ctx.body)


@router.route(
    PROJECT + "/deployments",
    "POST",
    scope="deployments:write",
    body=DeploymentCreate,
    response=Deployment,
    status=202,
    errors=(503,),
)
def create_deployment(ctx: RequestContext, project_id: str):
    """Deploy an upload: checks it arrived intact, records the deployment `pending`."""
    return pipeline.deploy_upload(ctx.workspace_id, ctx.principal.tier, project_id, ctx.body)


@router.route(
    PROJECT + "/deploy",
    "POST",
    scope="deployments:write",
    response=Deployment,
    status=202,
    multipart={
        "archive": Param({"type": "string", "format": "binary"}, "The .tar.gz", required=True),
        # No type: every form field is text on the wire, whatever was meant.
        "note": Param({"maxLength": 1000}, "Kept with the deployment"),
    },
    errors=(413, 503),
)
def deploy_archive(ctx: RequestContext, project_id: str):
    """Deploy an archive sent as multipart/form-data field `archive` (at most 4 MiB)."""
    content_type = ctx.headers.get("content-type") or ""
    raw = ctx.request.raw_body or b""
    return pipeline.deploy_archive(
        ctx.workspace_id, ctx.principal.tier, project_id, content_type, raw
    )


@router.route(
    PROJECT + "/deployments",
    "GET",
    scope="deployments:read",
    response=list[Deployment],
    query={
        "status": choice(STATUSES, "Only deployments in this status"),
        "environment": choice(ENVIRONMENTS, "Only deployments of this environment"),
    },
)
def list_deployments(ctx: RequestContext, project_id: str):
    """List a project's deployments, newest first."""
    status = ctx.param("status")
    environment = ctx.param("environment")
    name = deployments.list_name(project_id, status, environment)
    limit, start = ctx.page_params(name, ctx.workspace_id)
    return deployments.list_deployments(
        ctx.workspace_id, project_id, limit, start, status, environment
    )


@router.route(DEPLOYMENT, "GET", scope="deployments:read", response=Deployment)
def get_deployment(ctx: RequestContext, project_id: str, deployment_id: str):
    """Get a deployment."""
    return deployments.get(ctx.workspace_id, project_id, deployment_id)


@router.route(DEPLOYMENT + "/cancel", "POST", scope="deployments:write", response=Deployment)
def cancel_deployment(ctx: RequestContext, project_id: str, deployment_id: str):
    """Cancel a deployment that is pending, building, built or deploying."""
    return pipeline.cancel(ctx.workspace_id, project_id, deployment_id)


@router.route(
    DEPLOYMENT + "/retry",
    "POST",
    scope="deployments:write",
    response=Deployment,
    status=202,
    errors=(503,),
)
def retry_deployment(ctx: RequestContext, project_id: str, deployment_id: str):
    """Retry a failed or canceled deployment from the same source."""
    return pipeline.retry(ctx.workspace_id, ctx.principal.tier, project_id, deployment_id)


@router.route(
    PROJECT + "/redeploy",
    "POST",
    scope="deployments:write",
    body=RedeployRequest,
    response=Deployment,
)
def redeploy(ctx: RequestContext, project_id: str):
    """Deploy the current artifact again with the project's current env."""
    return pipeline.redeploy(ctx.workspace_id, ctx.principal.tier, project_id, ctx.body)


@router.route(
    PROJECT + "/rollback",
    "POST",
    scope="deployments:write",
    body=RollbackRequest,
    response=Deployment,
)
def rollback(ctx: RequestContext, project_id: str):
    """Deploy an earlier deployment's artifact and env snapshot again, without a rebuild."""
    return pipeline.rollback(ctx.workspace_id, ctx.principal.tier, project_id, ctx.body)


@router.route(
    DEPLOYMENT + "/wait",
    "GET",
    scope="deployments:read",
    response=Deployment,
    query={"timeout_s": integer(1, 25, 25, "Seconds to wait at most")},
)
def wait_deployment(ctx: RequestContext, project_id: str, deployment_id: str):
    """Long-poll: answers when the deployment is running or has ended, or at the timeout."""
    timeout_s = ctx.param("timeout_s")
    return deployments.wait(ctx.workspace_id, project_id, deployment_id, timeout_s)


def after_of(ctx: RequestContext) -> tuple[int, bool]:
    """The seq to continue after: Last-Event-ID (an EventSource reconnecting), else ?after=."""
    raw = ctx.headers.get("last-event-id")
    resumed = raw is not None and raw.strip() != ""
    if not resumed:
        after = ctx.param("after")
        return (0, False) if after is None else (after, True)
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value < MAX_SEQ:
        raise BadRequest("'after' and Last-Event-ID must be a log line's seq (an integer >= 0)")
    return value, True


@router.route(
    DEPLOYMENT + "/logs",
    "GET",
    scope="deployments:read",
    query={"after": AFTER, "limit": integer(1, 1000, 100, "Lines at most")},
    headers={"Last-Event-ID": LAST_EVENT_ID},
    content={"application/json": LogPage, "text/plain": {"schema": {"type": "string"}}},
)
def get_logs(ctx: RequestContext, project_id: str, deployment_id: str):
    """A deployment's log lines after a seq; JSON, or text with Accept: text/plain."""
    item = deployments.item_of(ctx.workspace_id, project_id, deployment_id)
    after, _ = after_of(ctx)
    limit = ctx.param("limit")
    batch = logs.read(project_id, deployment_id, after, limit, item)
    # More to read now: a full page, or lines already numbered (a status change's own line
    # among them) still being written.
    has_more = len(batch.lines) == limit or not batch.caught_up
    accept = (ctx.headers.get("accept") or "").lower()
    if "text/plain" in accept and "application/json" not in accept:
        return Response(
            body=logs.as_text(batch.lines),
            status_code=200,
            headers={
                "Content-Type": "text/plain; charset=utf-8",
                "X-Next-Cursor": str(batch.cursor),
                "X-Has-More": "true" if has_more else "false",
                "X-Deployment-Status": batch.status,
            },
        )
    body = {
        "data": [logs.to_model(line).model_dump(mode="json") for line in batch.lines],
        "pagination": {
            "next_cursor": str(batch.cursor),
            "has_more": has_more,
        },
        "status": batch.status,
    }
    return json_response(body, 200)


def ticket_credential(stream: str):
    """The `credential` of a deployment's stream route: the principal of a `?ticket=`
    (EventSource cannot send headers) on that stream, None without one."""

    def credential(request, params: dict[str, str]):
        ticket = (request.query_params or {}).get("ticket")
        if ticket is None:
            return None
        reconnect = bool((request.headers.get("last-event-id") or "").strip())
        project_id, deployment_id = params["project_id"], params["deployment_id"]
        return tickets.redeem(ticket, project_id, deployment_id, stream, reconnect)

    return credential


TICKET = text("A stream ticket (POST .../logs/stream-ticket), instead of a bearer token")


@router.route(
    DEPLOYMENT + "/logs/stream-ticket",
    "POST",
    scope="deployments:read",
    response=StreamTicket,
    status=201,
)
def create_stream_ticket(ctx: RequestContext, project_id: str, deployment_id: str):
    """A 60 s ticket that opens each of this deployment's log streams (build and runtime)
    once (`?ticket=`), for clients that cannot send an Authorization header (EventSource)."""
    deployments.item_of(ctx.workspace_id, project_id, deployment_id)
    ticket, expires_at = tickets.issue(ctx.principal, project_id, deployment_id)
    return StreamTicket(ticket=ticket, expires_at=rfc3339(datetime.fromtimestamp(expires_at, UTC)))


@router.route(
    DEPLOYMENT + "/logs/stream",
    "GET",
    scope="deployments:read",
    query={
        "after": AFTER,
        "ticket": TICKET,
    },
    headers={"Last-Event-ID": LAST_EVENT_ID},
    content={"text/event-stream": {"schema": SSE_EVENT}},
    credential=ticket_credential("logs"),
    errors=(204,),  # a reconnect after the done frame: the stream has ended
)
def stream_logs(ctx: RequestContext, project_id: str, deployment_id: str):
    """Server-sent events of the log: resumable with Last-Event-ID, ends with a done frame."""
    deployments.item_of(ctx.workspace_id, project_id, deployment_id)
    after, resumed = after_of(ctx)
    status, body = logs.stream(project_id, deployment_id, after, resumed)
    return Response(body=body, status_code=status, headers=SSE_HEADERS)


@router.route(PROJECT + "/releases", "GET", scope="deployments:read", response=list[Release])
def list_releases(ctx: RequestContext, project_id: str):
    """A project's releases, newest first: one each time a deployment reached running."""
    limit, start = ctx.page_params(f"releases:{project_id}", ctx.workspace_id)
    return deployments.list_releases(ctx.workspace_id, project_id, limit, start)
