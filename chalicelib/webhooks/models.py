"""Request and response models of webhook endpoints and deliveries (pydantic v2);
openapi.py renders them with the rest of the API's models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from chalicelib.core.models import (
    URL_CHARS,
    URL_HOST,
    URL_PORT,
    GraceHours,
    Input,
    Model,
    Timestamp,
)
from chalicelib.events.types import FILTERS

EventFilter = Literal[FILTERS]  # type: ignore[valid-type]
EventFilters = Annotated[list[EventFilter], Field(min_length=1, max_length=50)]
# An http(s) URL with a host name or IPv4 address (webhooks/guard.py then refuses plain http
# where private targets are not allowed, and addresses the outbound rules refuse).
URL_PATTERN = rf"^https?://{URL_HOST}{URL_PORT}(/({URL_CHARS}|/)*)?(\?({URL_CHARS}|[/?])*)?$"
Url = Annotated[str, Field(min_length=1, max_length=2048, pattern=URL_PATTERN)]
Description = Annotated[str, Field(max_length=1000)]
DeliveryStatus = Literal["pending", "success", "failed", "retrying"]
DELIVERY_STATUSES: tuple[str, ...] = ("pending", "success", "failed", "retrying")
Trigger = Literal["scheduled", "manual", "test"]


class WebhookCreate(Input):
    url: Url
    events: EventFilters
    description: Description | None = None


class WebhookUpdate(Input):
    url: Url | None = None
    events: EventFilters | None = None
    description: Description | None = None
    is_active: bool | None = Field(
        default=None, description="true turns a disabled endpoint back on"
    )


class SecretRotate(Input):
    grace_period_hours: GraceHours = 24


class Webhook(Model):
    id: str
    url: str
    events: list[str]
    description: str | None
    is_active: bool
    disabled_reason: str | None
    success_count: int
    failure_count: int
    consecutive_failures: int
    last_delivery_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp


class WebhookWithSecret(Webhook):
    secret: str = Field(description="whsec_ + base64: shown in this response only")


class Attempt(Model):
    attempt: int
    status: Literal["success", "failed"]
    response_code: int | None
    response_body: str | None = Field(description="the first 20 KB of the answer")
    error: str | None
    duration_ms: int
    trigger: Trigger
    started_at: Timestamp
    next_retry_at: Timestamp | None = Field(
        default=None, description="when the attempt after this one was due, if any"
    )


class Delivery(Model):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempt: int
    response_code: int | None
    next_retry_at: Timestamp | None
    created_at: Timestamp
    attempts: list[Attempt]


class TestResult(Model):
    success: bool
    status_code: int | None
    response_time_ms: int
    response_body: str | None
    error: str | None
