"""Idempotency-Key on POST, PATCH and DELETE (contract section 4).

The first request with a key takes a 60 s lease on it (a conditional put), runs, and stores
its response; a repeat within 24 h gets that response again with `Idempotent-Replayed:
true`, a repeat while it runs gets 409 `idempotency_key_in_use`, and a repeat with another
method, path or body gets 422 `idempotency_key_reused`. Responses that say "try again"
(401, 422, 429, 5xx) are not stored: the record is dropped so the key can be retried. A
request that dies mid-way leaves its lease behind; once the lease runs out (60 s by default,
more than API Gateway's 29 s limit on a request, so only a dead request loses it) the same
request may take the key over. Keys are scoped to the principal and the workspace it acts in.

Why not Powertools' idempotency utility: its in-progress expiry is the Lambda's remaining
time, and is absent outside Lambda, so neither the 60 s takeover nor the local stack would
hold; it stores only results that are returned and forgets raised errors, while the
contract replays 4xx errors (a 404, a 409) and forgets only 401, 422, 429 and 5xx; and it
would need its own serialisation of chalice responses. This layer is two writes per request.

An answer that holds a new API key is stored encrypted with KMS: keys are otherwise kept
only as a hash, and the stored answer must not be the one place a key can be read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from chalice import Response

from chalicelib.aws import kms
from chalicelib.core.errors import BadRequest, IdempotencyKeyInUse, IdempotencyKeyReused
from chalicelib.core.log import logger
from chalicelib.core.settings import get_settings
from chalicelib.identity.principal import Principal
from chalicelib.store import idempotency as store

HEADER = "Idempotency-Key"
METHODS = frozenset({"POST", "PATCH", "DELETE"})
RETENTION_S = 24 * 3600
REPLAYED = "Idempotent-Replayed"
# 1..255 printable ASCII characters; not starting or ending with a space, which HTTP
# would strip from the header's value.
KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"
_VALID_KEY = re.compile(KEY_PATTERN)
_NOT_STORED = frozenset({401, 422, 429})


def key_of(headers: Any, method: str) -> str | None:
    """The request's Idempotency-Key, None if it has none or the method ignores it.
    A key that is empty, longer than 255 characters or not printable ASCII is 400."""
    if method not in METHODS:
        return None
    key = headers.get(HEADER.lower())
    if key is None:
        return None
    if not _VALID_KEY.match(key):
        raise BadRequest(
            f"The {HEADER} header must be 1 to 255 printable ASCII characters",
            {"header": HEADER},
        )
    return key


def fingerprint(method: str, path: str, query: dict[str, str] | None, body: bytes) -> str:
    """What "the same request" means: method, path, query and body. A JSON body counts by
    its content, so whitespace and key order do not make a retry a different request."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError, RecursionError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method, path, json.dumps(sorted((query or {}).items()))):
        digest.update(part.encode() + b"\n")
    digest.update(canonical)
    return digest.hexdigest()


def run(
    principal: Principal,
    key: str,
    request_fingerprint: str,
    respond: Callable[[], Response],
    sealed: bool = False,
) -> Response:
    """Answer a request that carries an Idempotency-Key: `respond()` at most once per key.
    `sealed`: the response holds a secret (a new API key, stored elsewhere only as a hash),
    so its stored copy is encrypted with KMS, bound to this record."""
    scope = f"{principal.id}\n{principal.workspace_id or ''}\n{key}"
    record_id = hashlib.sha256(scope.encode()).hexdigest()
    lease = secrets.token_hex(16)
    now = int(time.time())
    found = store.claim(
        {
            "id": record_id,
            "status": "in_progress",
            "fingerprint": request_fingerprint,
            "lease": lease,
            "lease_until": now + get_settings().idempotency_lease_s,
            "expires_at": now + RETENTION_S,
        },
        now,
    )
    if found is not None:
        return _answer_repeat(found, request_fingerprint, record_id)
    response = respond()
    if response.status_code in _NOT_STORED or response.status_code >= 500:
        store.release(record_id, lease)
        return response
    try:
        if not store.complete(record_id, lease, _stored(response, record_id, sealed)):
            logger().warning("Idempotency lease lost before the response was stored")
    except Exception:
        # The work is done: answering 500 now would make the client retry it once the
        # lease runs out. Its answer is worth more than the record.
        logger().exception("Could not store the response of an idempotent request")
    return response


def _answer_repeat(found: dict[str, Any], request_fingerprint: str, record_id: str) -> Response:
    if found.get("fingerprint") != request_fingerprint:
        raise IdempotencyKeyReused()
    if found.get("status") != "completed":
        raise IdempotencyKeyInUse()
    stored = found["response"]
    body: str | bytes = stored["body"]
    if stored.get("sealed"):
        body = kms.decrypt(stored["body"], {"idempotency_record": record_id})
    elif stored.get("base64"):
        body = base64.b64decode(body)
    return Response(
        body=body, status_code=stored["status"], headers={**stored["headers"], REPLAYED: "true"}
    )


def _stored(response: Response, record_id: str, sealed: bool) -> dict[str, Any]:
    body = response.body
    if isinstance(body, (dict, list)):
        body = json.dumps(body, separators=(",", ":"))
    if sealed and isinstance(body, str) and body:
        return {
            "status": response.status_code,
            "headers": dict(response.headers),
            "body": kms.encrypt(body, {"idempotency_record": record_id}),
            "sealed": True,
        }
    if isinstance(body, bytes):
        return {
            "status": response.status_code,
            "headers": dict(response.headers),
            "body": base64.b64encode(body).decode(),
            "base64": True,
        }
    return {"status": response.status_code, "headers": dict(response.headers), "body": body or ""}
