"""SQS queues by their logical name in infra/resources.json."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from chalicelib.aws.clients import client
from chalicelib.core.settings import get_settings

_urls: dict[str, str] = {}
_depth: dict[str, tuple[float, int]] = {}
_lock = threading.Lock()
DEPTH_CACHE_S = 2.0


def url(name: str) -> str:
    full = get_settings().queue(name)
    found = _urls.get(full)
    if found is None:
        found = client("sqs").get_queue_url(QueueName=full)["QueueUrl"]
        with _lock:
            _urls[full] = found
    return found


def send(name: str, body: dict[str, Any], delay_s: int = 0) -> None:
    client("sqs").send_message(
        QueueUrl=url(name), MessageBody=json.dumps(body), DelaySeconds=min(delay_s, 900)
    )


def depth(name: str) -> int:
    """ApproximateNumberOfMessages, read at most every DEPTH_CACHE_S per process: a cheap
    check on the request path."""
    now = time.monotonic()
    cached = _depth.get(name)
    if cached and now - cached[0] < DEPTH_CACHE_S:
        return cached[1]
    attributes = client("sqs").get_queue_attributes(
        QueueUrl=url(name), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    value = int(attributes["ApproximateNumberOfMessages"])
    with _lock:
        _depth[name] = (now, value)
    return value


def forget() -> None:
    """Drop cached URLs and depths (tests switch between moto instances)."""
    with _lock:
        _urls.clear()
        _depth.clear()
