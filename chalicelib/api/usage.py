"""Routes of /v1/usage and /v1/entitlements."""

from __future__ import annotations

from chalicelib.api.http import RequestContext, Router
from chalicelib.core.errors import BadRequest
from chalicelib.core.models import Entitlement, Usage
from chalicelib.limits import quotas

router = Router(__name__, "usage")


@router.route("/v1/usage", "GET", scope="usage:read", response=Usage)
def get_usage(ctx: RequestContext):
    """Usage of the current period against the tier's limits."""
    return quotas.usage(ctx.workspace_id, ctx.principal.tier)


@router.route(
    "/v1/entitlements/check",
    "GET",
    scope="usage:read",
    response=Entitlement,
    query={"feature": "|".join(quotas.FEATURES), "quantity": "integer, default 1"},
)
def check_entitlement(ctx: RequestContext):
    """Whether the workspace may use `quantity` more of `feature` now."""
    feature = ctx.query_choice("feature", quotas.FEATURES)
    if feature is None:
        raise BadRequest(
            f"Query parameter 'feature' is required: one of {', '.join(quotas.FEATURES)}"
        )
    quantity = ctx.query_int("quantity", 1, 1_000_000, 1)
    return quotas.check_entitlement(ctx.workspace_id, ctx.principal.tier, feature, quantity)
