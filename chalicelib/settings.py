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
    # How long a verified key, workspace or membership is trusted from memory: the
    # longest a revocation made by another instance can take to be seen.
    key_cache_ttl_s: float = Field(default=5.0, ge=0, le=5.0)
    last_used_interval_s: float = 60.0
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_jwks_ttl_s: float = 3600.0
    oidc_jwks_refresh_interval_s: float = 30.0
    oidc_leeway_s: int = 30
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
    "last_used_interval_s": "SHIPYARD_LAST_USED_INTERVAL_S",
    "oidc_issuer": "SHIPYARD_OIDC_ISSUER",
    "oidc_audience": "SHIPYARD_OIDC_AUDIENCE",
    "oidc_jwks_url": "SHIPYARD_OIDC_JWKS_URL",
    "oidc_jwks_ttl_s": "SHIPYARD_OIDC_JWKS_TTL_S",
    "oidc_jwks_refresh_interval_s": "SHIPYARD_OIDC_JWKS_REFRESH_INTERVAL_S",
    "oidc_leeway_s": "SHIPYARD_OIDC_LEEWAY_S",
}


@cache
def get_settings() -> Settings:
    values = {field: os.environ[var] for field, var in _ENV.items() if os.environ.get(var)}
    return Settings(**values)
