"""The event as the API shows it (pydantic v2); openapi.py renders it."""

from __future__ import annotations

from typing import Any, Literal

from chalicelib.core.models import Model, Timestamp
from chalicelib.events.types import EVENT_TYPES

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


class Event(Model):
    id: str
    type: EventType
    timestamp: Timestamp
    data: dict[str, Any]
