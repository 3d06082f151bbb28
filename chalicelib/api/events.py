"""Routes of /v1/events: the workspace's events of the last 30 days. Reading them takes
`webhooks:read`, the scope of what webhooks carry."""

from __future__ import annotations

from chalicelib.api.http import RequestContext, Router, choice
from chalicelib.events import service as events
from chalicelib.events.models import Event
from chalicelib.events.types import EVENT_TYPES

router = Router(__name__, "events")


@router.route(
    "/v1/events",
    "GET",
    scope="webhooks:read",
    response=list[Event],
    query={"type": choice(EVENT_TYPES, "Only events of this type")},
)
def list_events(ctx: RequestContext):
    """List the workspace's events of the last 30 days, newest first."""
    event_type = ctx.param("type")
    limit, start = ctx.page_params(events.list_name(event_type), ctx.workspace_id)
    return events.list_events(ctx.workspace_id, event_type, limit, start)


@router.route("/v1/events/{event_id}", "GET", scope="webhooks:read", response=Event)
def get_event(ctx: RequestContext, event_id: str):
    """Get an event."""
    return events.get(ctx.workspace_id, event_id)
