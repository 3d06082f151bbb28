"""Opaque pagination cursors, signed and bound to one list in one workspace.

A cursor is base64url(JSON) + "." + base64url(HMAC-SHA256). The JSON names the list
(with its filters) and the scope it was issued for, so a cursor that was edited, or that
belongs to another list or workspace, is refused as `invalid_cursor`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from chalicelib.core.errors import InvalidCursor
from chalicelib.core.settings import get_settings


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: bytes) -> bytes:
    return hmac.new(get_settings().cursor_secret.encode(), payload, hashlib.sha256).digest()[:18]


def encode(list_name: str, scope: str, key: dict[str, Any]) -> str:
    payload = json.dumps({"l": list_name, "s": scope, "k": key}, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_sign(payload))}"


def decode(cursor: str, list_name: str, scope: str) -> dict[str, Any]:
    try:
        body, _, signature = cursor.partition(".")
        payload = _unb64(body)
        valid = hmac.compare_digest(_unb64(signature), _sign(payload))
        data = json.loads(payload) if valid else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if not data or data.get("l") != list_name or data.get("s") != scope:
        raise InvalidCursor()
    return data["k"]
