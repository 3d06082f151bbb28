"""Service routes: health and the OpenAPI document."""

from __future__ import annotations

from chalicelib.api import health
from chalicelib.api.http import RequestContext, Router, json_response
from chalicelib.core.models import Health

router = Router(__name__, "service")


@router.route("/v1/health", "GET", auth=False, response=Health)
def get_health(ctx: RequestContext):
    """Health of Shipyard and its dependencies (503 if one is down)."""
    state = health.check()
    if state.status == "ok":
        return json_response({"data": state.model_dump(mode="json")}, 200)
    return json_response(
        {"data": state.model_dump(mode="json")},
        503,
        {"Retry-After": str(health.RETRY_AFTER_S)},
    )


@router.route("/v1/openapi.json", "GET", auth=False)
def get_openapi(ctx: RequestContext):
    """The OpenAPI 3.1 document of this API."""
    from chalicelib.api.openapi import document

    return json_response(document(), 200)
