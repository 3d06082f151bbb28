"""Deliveries: one event sent to one endpoint, attempted until it succeeds or its retries
run out.

- `fan_out` makes a delivery of a new event for each active endpoint whose filters match
  it and enqueues it on the `webhook-deliveries` queue. A delivery's id is derived from the
  event and the endpoint, and written once, so fanning out one event again makes nothing
  new. A delivery is due (`due_at`) a claim's length after it is made: if its message never
  got out, the retry schedule sends it.
- `attempt` makes one attempt: it claims the delivery for the attempt number it expects
  (a conditional write), sends, and records what came back. A message delivered twice,
  two sweeps, a message and a sweep: whoever claims first sends, the others find nothing.
  A worker that dies after sending and before recording leaves its claim to run out; the
  delivery is then sent again under the same `webhook-id`, which receivers dedupe by.
- `sweep` (the schedule, every minute) attempts what is due. Failed attempts are retried at
  5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (+-20%, never sooner than a Retry-After); a
  retry due within SQS's longest delay also gets a delayed message, so it is not held back
  to the next minute.
"""

from __future__ import annotations

import math
import random
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from chalicelib.aws import queues
from chalicelib.core import ids
from chalicelib.core.clock import parse_rfc3339, precise, rfc3339
from chalicelib.core.errors import CannotRetry, NotFound
from chalicelib.core.log import logger
from chalicelib.core.pagination import Page
from chalicelib.core.settings import get_settings
from chalicelib.events import service as events
from chalicelib.events.types import matches
from chalicelib.outbound.http import Answer, post
from chalicelib.store import webhooks as store
from chalicelib.webhooks import signing
from chalicelib.webhooks.endpoints import owned, secrets_in_use
from chalicelib.webhooks.models import Attempt, Delivery, TestResult

QUEUE = "webhook-deliveries"
MAX_RESPONSE_BYTES = 20 * 1024
# A delivery keeps its newest attempts: each holds up to 20 KB of an answer, an item 400 KB.
KEEP_ATTEMPTS = 12
SQS_MAX_DELAY_S = 900
SWEEP_LIMIT = 100
SWEEP_WORKERS = 8


def _now() -> datetime:
    return datetime.now(UTC)


def new_delivery(event: dict[str, Any], endpoint: dict[str, Any], due: bool) -> dict[str, Any]:
    created = _now()
    item = {
        "webhook_id": endpoint["id"],
        "id": ids.derived_id("whd", event["at_ms"], f"{event['id']}|{endpoint['id']}"),
        "workspace_id": endpoint["workspace_id"],
        "event_id": event["id"],
        "event_type": event["type"],
        "status": "pending",
        "status_key": f"{endpoint['id']}#pending",
        "attempt": 0,
        "attempts": [],
        "created_at": rfc3339(created),
    }
    if due:
        at = precise(created + timedelta(seconds=get_settings().webhook_claim_s))
        item.update({"due_shard": store.DUE_SHARD, "due_at": at, "next_retry_at": at})
    return item


def _message(item: dict[str, Any]) -> dict[str, Any]:
    return {"webhook_id": item["webhook_id"], "delivery_id": item["id"], "attempt": item["attempt"]}


def endpoints_of(workspace_id: str) -> list[dict[str, Any]]:
    """The workspace's webhooks, for `fan_out`."""
    return store.endpoints_of(workspace_id)


def fan_out(event: dict[str, Any], endpoints: list[dict[str, Any]]) -> int:
    """Deliveries of `event` to those of its workspace's `endpoints` that want it; how
    many were made now."""
    made = 0
    for endpoint in endpoints:
        if endpoint["workspace_id"] != event["workspace_id"]:
            continue  # never another tenant's, whatever list a caller hands over
        if not endpoint.get("is_active", True) or not matches(endpoint["events"], event["type"]):
            continue
        if endpoint.get("created_ms", 0) > event["at_ms"]:
            continue
        item = new_delivery(event, endpoint, due=True)
        if store.create_delivery(item):
            queues.send(QUEUE, _message(item))
            made += 1
    return made


def on_message(message: dict[str, Any]) -> None:
    attempt(message["webhook_id"], message["delivery_id"], int(message["attempt"]))


def attempt(webhook_id: str, delivery_id: str, expected: int) -> dict[str, Any] | None:
    """Attempt number `expected + 1` of a delivery, if it is open and nobody holds it;
    the delivery after, or None if there was nothing to do."""
    now = _now()
    token = secrets.token_hex(8)
    until = precise(now + timedelta(seconds=get_settings().webhook_claim_s))
    claimed = store.claim(webhook_id, delivery_id, expected, precise(now), until, token)
    if claimed is None:
        return None
    trigger = "manual" if claimed.get("manual") else "scheduled"
    return _send_and_record(claimed, token, trigger)


def _send_and_record(delivery: dict[str, Any], token: str, trigger: str) -> dict[str, Any] | None:
    started = _now()
    endpoint = store.get_endpoint(delivery["workspace_id"], delivery["webhook_id"])
    event = events.find(delivery["workspace_id"], delivery["event_id"])
    sent = False
    if endpoint is None or event is None:
        answer = Answer(None, error="The endpoint was deleted" if event else "The event expired")
    elif not endpoint.get("is_active", True) and trigger != "test":
        # A disabled endpoint is called no more: what was waiting for it ends here.
        answer = Answer(None, error=f"The endpoint is disabled: {endpoint.get('disabled_reason')}")
    else:
        answer, sent = send(endpoint, event), True
    succeeded = answer.status is not None and 200 <= answer.status < 300
    number = delivery["attempt"] + 1
    delay = None
    if sent and not succeeded and trigger != "test" and answer.status != 410:
        delay = next_delay(number, answer.headers.get("retry-after"))
    next_at = precise(_now() + timedelta(seconds=delay)) if delay is not None else None
    record = {
        "attempt": number,
        "status": "success" if succeeded else "failed",
        "response_code": answer.status,
        "response_body": answer.body.decode("utf-8", "replace") if answer.status else None,
        "error": answer.error,
        "duration_ms": answer.duration_ms,
        "trigger": trigger,
        "started_at": rfc3339(started),
        "next_retry_at": _seconds(next_at),
    }
    status = "success" if succeeded else ("retrying" if next_at else "failed")
    attempts = [record, *delivery.get("attempts", [])][:KEEP_ATTEMPTS]
    saved = store.record_attempt(
        delivery["webhook_id"], delivery["id"], token, attempts, status, next_at
    )
    if saved is None:
        logger().warning("A delivery's claim ran out before its attempt was recorded")
        return None
    if sent and trigger != "test":
        _count(endpoint, answer, succeeded)
    if next_at and delay is not None and delay <= SQS_MAX_DELAY_S:
        queues.send(QUEUE, _message(saved), delay_s=math.ceil(delay))
    return saved


def send(endpoint: dict[str, Any], event: dict[str, Any]) -> Answer:
    """One signed POST of `event` to `endpoint`."""
    content = signing.body(event)
    headers = signing.headers(secrets_in_use(endpoint), event["id"], int(time.time()), content)
    settings = get_settings()
    return post(endpoint["url"], content, headers, settings.webhook_timeout_s, MAX_RESPONSE_BYTES)


def _count(endpoint: dict[str, Any], answer: Answer, succeeded: bool) -> None:
    """The endpoint's counters; an endpoint that answered 410, or whose deliveries have all
    failed for 5 days, is turned off."""
    now = _now()
    counted = store.count_attempt(endpoint["workspace_id"], endpoint["id"], succeeded, rfc3339(now))
    if counted is None or succeeded:
        return
    reason = None
    if answer.status == 410:
        reason = "The endpoint answered 410 Gone"
    else:
        since = parse_rfc3339(counted["failing_since"])
        limit = get_settings().webhook_disable_after_s
        if (now - since).total_seconds() >= limit:
            reason = f"Every delivery failed for {_duration(limit)}"
    if reason:
        store.disable(endpoint["workspace_id"], endpoint["id"], reason, rfc3339(now))


def _duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:g} days"
    return f"{seconds:g} seconds"


def schedule() -> list[float]:
    return [float(s) for s in get_settings().webhook_retry_schedule_s.split(",") if s.strip()]


def next_delay(attempts_made: int, retry_after: str | None) -> float | None:
    """Seconds until the next attempt after `attempts_made` attempts, or None when the
    retries have run out: the schedule's step with +-20% jitter, and never sooner than the
    receiver's Retry-After (seconds or an HTTP date)."""
    steps = schedule()
    if attempts_made > len(steps):
        return None
    delay = steps[attempts_made - 1] * random.uniform(0.8, 1.2)
    return max(delay, _retry_after_s(retry_after))


def _retry_after_s(value: str | None) -> float:
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - _now()).total_seconds())
    except (TypeError, ValueError):
        return 0.0


def sweep() -> dict[str, int]:
    """Attempt every delivery that is due (at most SWEEP_LIMIT a run, a few at a time:
    each attempt can wait 15 s on its receiver)."""
    due = store.due(precise(_now()), SWEEP_LIMIT)
    with ThreadPoolExecutor(SWEEP_WORKERS, thread_name_prefix="webhook-sweep") as pool:
        done = list(
            pool.map(lambda item: attempt(item["webhook_id"], item["id"], item["attempt"]), due)
        )
    return {"due": len(due), "attempted": sum(1 for d in done if d is not None)}


def to_model(item: dict[str, Any]) -> Delivery:
    return Delivery(
        id=item["id"],
        webhook_id=item["webhook_id"],
        event_id=item["event_id"],
        event_type=item["event_type"],
        status=item["status"],
        attempt=item["attempt"],
        response_code=item.get("response_code"),
        next_retry_at=_seconds(item.get("next_retry_at")),
        created_at=item["created_at"],
        attempts=[Attempt(**a) for a in item.get("attempts", [])],
    )


def _seconds(moment: str | None) -> str | None:
    """The contract's timestamps have seconds; due times are kept to the millisecond."""
    return rfc3339(parse_rfc3339(moment)) if moment else None


def list_deliveries(
    workspace_id: str, webhook_id: str, status: str | None, limit: int, start: dict | None
) -> Page:
    owned(workspace_id, webhook_id)
    items, next_key = store.list_deliveries(webhook_id, status, limit, start)
    name = f"deliveries:{webhook_id}:{status or '*'}"
    return Page([to_model(i) for i in items], next_key, name, workspace_id)


def retry(workspace_id: str, webhook_id: str, delivery_id: str) -> Delivery:
    """A manual retry: the delivery is attempted again now (400 once it has succeeded)."""
    owned(workspace_id, webhook_id)
    if store.get_delivery(webhook_id, delivery_id) is None:
        raise NotFound("Delivery")
    reopened = store.reopen(webhook_id, delivery_id, precise(_now()))
    if reopened is None:
        raise CannotRetry()
    queues.send(QUEUE, _message(reopened))
    return to_model(reopened)


def test(workspace_id: str, webhook_id: str) -> TestResult:
    """Send a `webhook.test` event to the endpoint now, whatever its state, and say how it
    went. It is an event of the workspace like any other, delivered to this endpoint only,
    and not retried."""
    endpoint = owned(workspace_id, webhook_id)
    moment = _now()
    event = events.new_event(
        workspace_id,
        "webhook.test",
        {"webhook_id": webhook_id, "message": "A test event from Shipyard"},
        moment,
        f"webhook.test|{webhook_id}|{secrets.token_hex(8)}",
    )
    events.record(event)
    item = new_delivery(event, endpoint, due=False)
    store.create_delivery(item)
    token = secrets.token_hex(8)
    until = precise(moment + timedelta(seconds=get_settings().webhook_claim_s))
    claimed = store.claim(webhook_id, item["id"], 0, precise(moment), until, token)
    saved = _send_and_record(claimed, token, "test") if claimed else None
    last = saved["attempts"][0] if saved else None
    return TestResult(
        success=bool(last and last["status"] == "success"),
        status_code=last and last["response_code"],
        response_time_ms=last["duration_ms"] if last else 0,
        response_body=last and last["response_body"],
        error=last and last["error"],
    )
