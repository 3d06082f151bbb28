"""A page of a list, as the domain returns it: the items, the key to continue from, and the
list and scope a cursor for it is bound to. The API turns `next_key` into a signed cursor
(api/cursors.py); nothing below the API signs or reads cursors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Page:
    """One page of a list, and the key to continue from."""

    items: list[Any]
    next_key: dict[str, Any] | None
    list_name: str
    scope: str
