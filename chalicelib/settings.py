"""Shipyard's settings: read once from the environment into one typed model."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    stage: str = "local"
    region: str = "us-east-1"
    resource_prefix: str = "shipyard"
    cursor_secret: str = Field(min_length=16)
    kms_key_alias: str = "alias/shipyard"
    public_url: str = "http://127.0.0.1:8000"
    max_body_bytes: int = 1024 * 1024
    key_cache_ttl_s: float = 5.0
    idempotency_lease_s: int = Field(default=60, ge=1, le=60)
    bucket_name: str | None = None

    def table(self, name: str) -> str:
        return f"{self.resource_prefix}-{name}"

    def queue(self, name: str) -> str:
        return f"{self.resource_prefix}-{name}"

    @property
    def bucket(self) -> str:
        """S3 names are global: on AWS the bucket's generated name comes in SHIPYARD_BUCKET."""
        return self.bucket_name or f"{self.resource_prefix}-artifacts"


_ENV = {
    "stage": "SHIPYARD_STAGE",
    "region": "AWS_DEFAULT_REGION",
    "resource_prefix": "SHIPYARD_RESOURCE_PREFIX",
    "cursor_secret": "SHIPYARD_CURSOR_SECRET",
    "kms_key_alias": "SHIPYARD_KMS_KEY_ALIAS",
    "public_url": "SHIPYARD_PUBLIC_URL",
    "max_body_bytes": "SHIPYARD_MAX_BODY_BYTES",
    "key_cache_ttl_s": "SHIPYARD_KEY_CACHE_TTL_S",
    "idempotency_lease_s": "SHIPYARD_IDEMPOTENCY_LEASE_S",
    "bucket_name": "SHIPYARD_BUCKET",
}


@cache
def get_settings() -> Settings:
    values = {field: os.environ[var] for field, var in _ENV.items() if os.environ.get(var)}
    return Settings(**values)
