"""Stream tickets: a browser's EventSource cannot send an Authorization header, so the log
streams also take `?ticket=`, a short-lived credential for one deployment's streams (its
build log and its runtime log).

A ticket is base64url(JSON) + "." + base64url(HMAC-SHA256 with the cursor secret). It names
the principal that asked for it (rate limits keep counting against it), the deployment, a
nonce and an expiry (60 s: `stream_ticket_ttl_s`), and grants only `deployments:read` on
that deployment's streams.

Reuse: a ticket opens each of its deployment's streams once (so a client that follows the
build log into the runtime log may use one ticket for both). The first request to a stream
without `Last-Event-ID` redeems it for that stream (a one-time claim in DynamoDB of the
nonce and the stream); the reconnects EventSource makes by itself carry
`Last-Event-ID` and are accepted until the ticket expires, so a stream that reconnects every
25 s keeps going. Another fresh open with the same ticket, an expired ticket, or a ticket
of another deployment is 401. A client that needs a stream after expiry asks for a new one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import time

from chalicelib.core.errors import Unauthorized
from chalicelib.core.settings import get_settings
from chalicelib.identity.principal import Principal
from chalicelib.store import tickets as store

SCOPE = "deployments:read"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign(payload: bytes) -> bytes:
    key = b"stream-ticket:" + get_settings().cursor_secret.encode()
    return hmac.new(key, payload, hashlib.sha256).digest()


def issue(principal: Principal, project_id: str, deployment_id: str) -> tuple[str, int]:
    """A ticket for the stream of one deployment, and when it expires (Unix seconds)."""
    expires_at = math.ceil(time.time()) + get_settings().stream_ticket_ttl_s
    claims = {
        "k": principal.kind,
        "i": principal.id,
        "w": principal.workspace_id,
        "t": principal.tier,
        "p": project_id,
        "d": deployment_id,
        "n": secrets.token_urlsafe(12),
        "e": expires_at,
    }
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_sign(payload))}", expires_at


def redeem(
    ticket: str, project_id: str, deployment_id: str, stream: str, reconnect: bool
) -> Principal:
    """The principal a ticket stands for on this deployment's `stream` ("logs" or
    "runtime-logs"), or Unauthorized."""
    try:
        body, _, signature = ticket.partition(".")
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        valid = hmac.compare_digest(given, _sign(payload))
        claims = json.loads(payload) if valid else None
    except (ValueError, UnicodeDecodeError):
        claims = None
    if not isinstance(claims, dict):
        raise Unauthorized("The stream ticket is not valid")
    if claims.get("p") != project_id or claims.get("d") != deployment_id:
        raise Unauthorized("The stream ticket is for another deployment")
    if claims["e"] <= time.time():  # whole seconds: a ticket lives at least its TTL
        raise Unauthorized("The stream ticket expired: ask for a new one")
    if not reconnect and not store.claim(f"{claims['n']}:{stream}", claims["e"]):
        raise Unauthorized("The stream ticket was already used: ask for a new one")
    return Principal(
        kind=claims["k"],
        id=claims["i"],
        scopes=(SCOPE,),
        workspace_id=claims["w"],
        tier=claims["t"],
    )
