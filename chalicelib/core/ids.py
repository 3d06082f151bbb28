"""Opaque, prefixed, time-sortable identifiers (`prj_01j...`).

The body is a ULID in lowercase Crockford base32: 48 bits of milliseconds and 80 random
bits. Sorting ids sorts by creation time, so a DynamoDB sort key on an id lists newest
first without a second index.
"""

from __future__ import annotations

import hashlib
import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{_b32(millis, 10)}{_b32(secrets.randbits(80), 16)}"


def derived_id(prefix: str, millis: int, seed: str) -> str:
    """An id of the same form, made from what it names rather than at random: the same
    `millis` and `seed` always give the same id (an event derived from one stream record,
    the delivery of one event to one endpoint), and it still sorts by `millis`."""
    digest = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:10], "big")
    return f"{prefix}_{_b32(millis, 10)}{_b32(digest, 16)}"


def could_be(prefix: str, value: str) -> bool:
    """Whether `value` has the form of an id made with `prefix`: anything else is unknown
    without a read (and a key too long for DynamoDB would be an error there, not a miss)."""
    return value.startswith(prefix + "_") and len(value) <= 64
