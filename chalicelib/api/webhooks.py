"""Routes of /v1/webhooks: endpoints, their secret, test sends and deliveries."""

from __future__ import annotations

from chalicelib.api.http import RequestContext, Router, choice
from chalicelib.webhooks import deliveries, endpoints
from chalicelib.webhooks.models import (
    DELIVERY_STATUSES,
    Delivery,
    SecretRotate,
    TestResult,
    Webhook,
    WebhookCreate,
    WebhookUpdate,
    WebhookWithSecret,
)

router = Router(__name__, "webhooks")
WEBHOOK = "/v1/webhooks/{webhook_id}"


@router.route("/v1/webhooks", "GET", scope="webhooks:read", response=list[Webhook])
def list_webhooks(ctx: RequestContext):
    """List the workspace's webhook endpoints, newest first; never their secrets."""
    limit, start = ctx.page_params(endpoints.LIST_NAME, ctx.workspace_id)
    return endpoints.list_endpoints(ctx.workspace_id, limit, start)


@router.route(
    "/v1/webhooks",
    "POST",
    scope="webhooks:write",
    body=WebhookCreate,
    response=WebhookWithSecret,
    status=201,
    secret=True,
)
def create_webhook(ctx: RequestContext):
    """Create a webhook endpoint; its signing secret is in this response only."""
    return endpoints.create(ctx.workspace_id, ctx.body)


@router.route(WEBHOOK, "GET", scope="webhooks:read", response=Webhook)
def get_webhook(ctx: RequestContext, webhook_id: str):
    """Get a webhook endpoint and its delivery counters."""
    return endpoints.get(ctx.workspace_id, webhook_id)


@router.route(WEBHOOK, "PATCH", scope="webhooks:write", body=WebhookUpdate, response=Webhook)
def update_webhook(ctx: RequestContext, webhook_id: str):
    """Change a webhook endpoint's URL, events or description, or turn it on or off."""
    return endpoints.update(ctx.workspace_id, webhook_id, ctx.body)


@router.route(WEBHOOK, "DELETE", scope="webhooks:write", status=204)
def delete_webhook(ctx: RequestContext, webhook_id: str):
    """Delete a webhook endpoint: nothing more is sent to it."""
    endpoints.delete(ctx.workspace_id, webhook_id)


@router.route(WEBHOOK + "/test", "POST", scope="webhooks:write", response=TestResult)
def test_webhook(ctx: RequestContext, webhook_id: str):
    """Send a webhook.test event to the endpoint now and say how it answered."""
    return deliveries.test(ctx.workspace_id, webhook_id)


@router.route(
    WEBHOOK + "/rotate-secret",
    "POST",
    scope="webhooks:write",
    body=SecretRotate,
    response=WebhookWithSecret,
    secret=True,
)
def rotate_secret(ctx: RequestContext, webhook_id: str):
    """Replace the signing secret; deliveries carry both signatures for the grace period."""
    return endpoints.rotate_secret(ctx.workspace_id, webhook_id, ctx.body.grace_period_hours)


@router.route(
    WEBHOOK + "/deliveries",
    "GET",
    scope="webhooks:read",
    response=list[Delivery],
    query={"status": choice(DELIVERY_STATUSES, "Only deliveries in this status")},
)
def list_deliveries(ctx: RequestContext, webhook_id: str):
    """List an endpoint's deliveries, newest first, each with its attempts."""
    status = ctx.param("status")
    name = f"deliveries:{webhook_id}:{status or '*'}"
    limit, start = ctx.page_params(name, ctx.workspace_id)
    return deliveries.list_deliveries(ctx.workspace_id, webhook_id, status, limit, start)


@router.route(
    WEBHOOK + "/deliveries/{delivery_id}/retry",
    "POST",
    scope="webhooks:write",
    response=Delivery,
    status=202,
)
def retry_delivery(ctx: RequestContext, webhook_id: str, delivery_id: str):
    """Attempt a delivery again now (400 cannot_retry once it has succeeded)."""
    return deliveries.retry(ctx.workspace_id, webhook_id, delivery_id)
