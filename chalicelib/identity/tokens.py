"""The API key format: `sk_live_` or `sk_partner_`, 32 random base62 characters, then a
6-character base62 CRC32 of those 32 characters. The checksum lets a mistyped or forged
key be refused without a database read. Keys are stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets
import zlib

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
WORKSPACE_PREFIX = "sk_live_"
PARTNER_PREFIX = "sk_partner_"
BODY_LENGTH = 32
CHECKSUM_LENGTH = 6
DISPLAY_PREFIX_LENGTH = 4


def _base62(value: int, width: int) -> str:
    chars = []
    while value:
        value, rest = divmod(value, 62)
        chars.append(BASE62[rest])
    return "".join(reversed(chars)).rjust(width, "0")


def checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECKSUM_LENGTH)


def generate(prefix: str) -> str:
    body = "".join(secrets.choice(BASE62) for _ in range(BODY_LENGTH))
    return f"{prefix}{body}{checksum(body)}"


def split(token: str) -> tuple[str, str] | None:
    """(prefix, body) of a well-formed key whose checksum holds; None otherwise."""
    for prefix in (WORKSPACE_PREFIX, PARTNER_PREFIX):
        if token.startswith(prefix):
            rest = token[len(prefix) :]
            if len(rest) != BODY_LENGTH + CHECKSUM_LENGTH or any(c not in BASE62 for c in rest):
                return None
            body, check = rest[:BODY_LENGTH], rest[BODY_LENGTH:]
            if not secrets.compare_digest(checksum(body), check):
                return None
            return prefix, body
    return None


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    """What lists show of a key: its type prefix and the first characters of its body."""
    prefix, body = split(token) or ("", token)
    return prefix + body[:DISPLAY_PREFIX_LENGTH]
