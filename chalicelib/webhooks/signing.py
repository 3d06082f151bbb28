"""Standard Webhooks signing (https://www.standardwebhooks.com): secrets `whsec_` +
base64, and `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` per secret in use."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def body(event: dict[str, Any]) -> bytes:
    """What a delivery of `event` carries."""
    payload = {"type": event["type"], "timestamp": event["timestamp"], "data": event["data"]}
    return json.dumps(payload, separators=(",", ":")).encode()


def headers(
    secrets_in_use: list[str], message_id: str, timestamp: int, content: bytes
) -> dict[str, str]:
    """The headers of one attempt: during a rotation's grace period, one signature per
    secret, space-separated."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "Shipyard-Webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, message_id, timestamp, content) for secret in secrets_in_use
        ),
    }
