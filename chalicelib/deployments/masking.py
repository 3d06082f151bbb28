"""Masking a deployment's secrets: every value of its secret env vars (4 characters or
longer) becomes `***` in whatever Shipyard writes about it (log lines, `error_message`,
webhook payloads), also in the value's base64, base64url and URL-encoded forms.

A `Masker` is built from the secret values of the deployment's env snapshot (env.py)
and kept in memory per deployment with the snapshot, so a process decrypts a snapshot
once, not once per line or per pipeline step. Masking works on whole lines: the writers
assemble a line from the chunks a process writes before they hand it over, so a value
that arrives in two writes is masked like any other.
"""

from __future__ import annotations

import base64
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar
from urllib.parse import quote, quote_plus

T = TypeVar("T")

MASK = "***"
MIN_SECRET_CHARS = 4
# A value inside a longer base64 text (`base64 <<< "user:$TOKEN"`) encodes differently at
# each of the three byte offsets; its middle part is the same wherever it sits. Only cores
# this long are masked, so a few common base64 characters are never taken for a secret.
MIN_CORE_CHARS = 8
_CACHE_SIZE = 512


class Masker:
    """Replaces every form of the given secret values by `***`; `Masker([])` changes nothing."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in secrets:
            if len(value) >= MIN_SECRET_CHARS:
                forms.update(_forms(value))
        # Longest first: a form that contains another is replaced whole.
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)


NO_SECRETS = Masker([])


def _forms(value: str) -> set[str]:
    raw = value.encode()
    forms = {
        value,
        quote(value, safe=""),
        quote_plus(value, safe=""),
        quote(value),
    }
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        forms.update((whole, whole.rstrip("=")))
        for offset in range(3):
            core = _aligned_core(encode, raw, offset)
            if len(core) >= MIN_CORE_CHARS:
                forms.add(core)
    return {form for form in forms if len(form) >= MIN_SECRET_CHARS}


def _aligned_core(encode: Callable[[bytes], bytes], raw: bytes, offset: int) -> str:
    """The base64 characters that depend on `raw` alone when it starts `offset` bytes into
    a 3-byte group of a longer text."""
    padded = b"\0" * offset + raw
    whole_groups = len(padded) // 3
    text = encode(padded[: whole_groups * 3]).decode()
    return text[4:] if offset else text


class RecentCache(Generic[T]):
    """Values per deployment id, the most recently used kept: what is derived from its env
    snapshot, which never changes."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._size = size
        self._values: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, deployment_id: str, build: Callable[[], T | None]) -> T | None:
        """The value kept, or build()'s (kept unless None)."""
        with self._lock:
            found = self._values.get(deployment_id)
            if found is not None:
                self._values.move_to_end(deployment_id)
                return found
        built = build()
        return built if built is None else self.put(deployment_id, built)

    def put(self, deployment_id: str, value: T) -> T:
        with self._lock:
            self._values[deployment_id] = value
            while len(self._values) > self._size:
                self._values.popitem(last=False)
        return value
