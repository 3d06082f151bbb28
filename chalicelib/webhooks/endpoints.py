"""Webhook endpoints of a workspace: create, read, update, delete, rotate the secret.

The signing secret is shown once (create, rotate) and kept sealed with the CMK (context:
the endpoint's id). A rotation keeps the previous secret for its grace period, meanwhile
each delivery is signed with both.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.aws import kms
from chalicelib.core import ids
from chalicelib.core.clock import now_iso, parse_rfc3339, rfc3339
from chalicelib.core.errors import NotFound
from chalicelib.core.pagination import Page
from chalicelib.store import webhooks as store
from chalicelib.store.errors import Missing
from chalicelib.webhooks import signing
from chalicelib.webhooks.guard import check_url
from chalicelib.webhooks.models import (
    Webhook,
    WebhookCreate,
    WebhookUpdate,
    WebhookWithSecret,
)

LIST_NAME = "webhooks"


def _seal(webhook_id: str, secret: str) -> str:
    return kms.encrypt(secret, {"webhook_id": webhook_id})


def to_model(item: dict[str, Any]) -> Webhook:
    return Webhook(
        id=item["id"],
        url=item["url"],
        events=item["events"],
        description=item.get("description"),
        is_active=item.get("is_active", True),
        disabled_reason=item.get("disabled_reason"),
        success_count=item.get("success_count", 0),
        failure_count=item.get("failure_count", 0),
        consecutive_failures=item.get("consecutive_failures", 0),
        last_delivery_at=item.get("last_delivery_at"),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
    )


def owned(workspace_id: str, webhook_id: str) -> dict[str, Any]:
    item = store.get_endpoint(workspace_id, webhook_id)
    if item is None:
        raise NotFound("Webhook")
    return item


def create(workspace_id: str, body: WebhookCreate) -> WebhookWithSecret:
    url = check_url(body.url)
    webhook_id, secret, now = ids.new_id("wh"), signing.new_secret(), now_iso()
    item = {
        # An endpoint gets the events of changes made after it was made (to the millisecond:
        # a stream is read late, and that must not change who gets what).
        "created_ms": int(time.time() * 1000),
        "workspace_id": workspace_id,
        "id": webhook_id,
        "url": url,
        "events": list(dict.fromkeys(body.events)),
        "description": body.description,
        "is_active": True,
        "secret": _seal(webhook_id, secret),
        "success_count": 0,
        "failure_count": 0,
        "consecutive_failures": 0,
        "created_at": now,
        "updated_at": now,
    }
    store.create_endpoint(item)
    return WebhookWithSecret(**to_model(item).model_dump(), secret=secret)


def list_endpoints(workspace_id: str, limit: int, start: dict[str, Any] | None) -> Page:
    items, next_key = store.list_endpoints(workspace_id, limit, start)
    return Page([to_model(item) for item in items], next_key, LIST_NAME, workspace_id)


def get(workspace_id: str, webhook_id: str) -> Webhook:
    return to_model(owned(workspace_id, webhook_id))


def update(workspace_id: str, webhook_id: str, body: WebhookUpdate) -> Webhook:
    owned(workspace_id, webhook_id)
    sets: dict[str, Any] = {"updated_at": now_iso()}
    removes: tuple[str, ...] = ()
    if body.url is not None:
        sets["url"] = check_url(body.url)
    if body.events is not None:
        sets["events"] = list(dict.fromkeys(body.events))
    if "description" in body.model_fields_set:
        sets["description"] = body.description
    if body.is_active is True:
        # Turned back on: it starts afresh, as if it had never failed.
        sets.update({"is_active": True, "consecutive_failures": 0})
        removes = ("disabled_reason", "failing_since")
    elif body.is_active is False:
        sets.update({"is_active": False, "disabled_reason": "Disabled by a user"})
    return to_model(store.update_endpoint(workspace_id, webhook_id, sets, removes))


def delete(workspace_id: str, webhook_id: str) -> None:
    """Delete an endpoint, then its deliveries (no one can read them any more)."""
    store.delete_endpoint(workspace_id, webhook_id)
    store.purge_deliveries(webhook_id)


def purge_workspace(workspace_id: str) -> None:
    """Delete every endpoint of a workspace being deleted, each after its deliveries, so a
    retried workspace DELETE finishes what a failed one began."""
    for item in store.endpoints_of(workspace_id):
        store.purge_deliveries(item["id"])
        try:
            store.delete_endpoint(workspace_id, item["id"])
        except Missing:
            continue


def rotate_secret(workspace_id: str, webhook_id: str, grace_period_hours: int) -> WebhookWithSecret:
    item = owned(workspace_id, webhook_id)
    secret, now = signing.new_secret(), datetime.now(UTC)
    sets = {"secret": _seal(webhook_id, secret), "updated_at": rfc3339(now)}
    removes: tuple[str, ...] = ()
    if grace_period_hours > 0:
        sets["previous_secret"] = item["secret"]
        sets["previous_until"] = rfc3339(now + timedelta(hours=grace_period_hours))
    else:
        removes = ("previous_secret", "previous_until")
    updated = store.update_endpoint(workspace_id, webhook_id, sets, removes)
    return WebhookWithSecret(**to_model(updated).model_dump(), secret=secret)


def secrets_in_use(item: dict[str, Any]) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one
    while its grace period runs."""
    context = {"webhook_id": item["id"]}
    found = [kms.decrypt(item["secret"], context)]
    until = item.get("previous_until")
    if until and parse_rfc3339(until) > datetime.now(UTC):
        found.append(kms.decrypt(item["previous_secret"], context))
    return found
