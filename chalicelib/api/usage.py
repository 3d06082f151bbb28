"""Routes of /v1/usage and /v1/entitlements."""

from __future__ import annotations

from chalicelib.api.http import RequestContext, Router, choice, integer
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
    query={
        "feature": choice(quotas.FEATURES, "The metric to check", required=True),
        "quantity": integer(1, 1_000_000, 1, "How much more would be used"),
    },
)
def check_entitlement(ctx: RequestContext):
    """Whether the workspace may use `quantity` more of `feature` now."""
    feature = ctx.param("feature")
    quantity = ctx.param("quantity")
    return quotas.check_entitlement(ctx.workspace_id, ctx.principal.tier, feature, quantity)
