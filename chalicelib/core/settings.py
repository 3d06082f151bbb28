"""Shipyard's settings: read once from the environment into one typed model."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

# The checkout: the local stack keeps its state under it unless SHIPYARD_STATE_DIR says.
ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseModel):
    # Built when first read, not on import, like every model (core/models.py).
    model_config = ConfigDict(defer_build=True)

    stage: str = "local"
    region: str = "us-east-1"
    resource_prefix: str = "shipyard"
    cursor_secret: str = Field(min_length=16)
    kms_key_alias: str = "alias/shipyard"
    public_url: str = "http://127.0.0.1:8000"
    max_body_bytes: int = 1024 * 1024
    # Every AWS call is bounded: a dependency that stops answering costs a request at most
    # aws_max_attempts x (connect + read timeout) plus backoff, under API Gateway's 29 s,
    # and the request is answered 503 service_unavailable (api/http.py), not left hanging.
    aws_connect_timeout_s: float = Field(default=2.0, gt=0)
    aws_read_timeout_s: float = Field(default=8.0, gt=0)
    aws_max_attempts: int = Field(default=3, ge=1, le=10)
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
    # The deployment pipeline. Timeouts are settings so tests can run them in seconds.
    upload_max_bytes: int = 50 * 1024 * 1024
    upload_expires_s: int = 3600
    deploy_max_bytes: int = 4 * 1024 * 1024
    # Downloads of what was built above this size go through a presigned S3 GET (a 302):
    # Lambda's responses stop at 6 MB, and base64 makes a binary body a third larger.
    artifact_inline_max_bytes: int = 4 * 1024 * 1024
    pending_timeout_s: int = 1800
    pending_requeue_s: int = 60
    build_timeout_s: int = 900
    deploy_timeout_s: int = 300
    build_queue_max: int = 1000
    sse_wait_s: float = Field(default=20.0, gt=0, le=25)
    sse_retry_ms: int = 1000
    stream_ticket_ttl_s: int = Field(default=60, ge=1, le=300)
    log_gap_grace_s: float = 5.0
    workflow_wait_s: int = 0
    workflow_task_timeout_s: int = 120
    health_check_request_timeout_s: float = 5.0
    # Apps that stay up: how long a replaced app drains, how often the supervisor looks,
    # and its restart backoff (1 s doubling to 5 min; tests shorten them).
    drain_grace_s: float = 5.0
    supervisor_tick_s: float = 1.0
    restart_backoff_s: float = 1.0
    restart_backoff_max_s: float = 300.0
    deploy_workflow_arn: str | None = None
    state_dir: str | None = None
    # The AWS runtime: the ECR repository of the apps' images and their execution role.
    image_repository: str | None = None
    app_role_arn: str | None = None
    # Days the apps' log groups keep their events: the stack's LogRetentionDays parameter.
    app_log_retention_days: int = Field(default=30, ge=1)
    # Outbound connections to user-given URLs (chalicelib/outbound). Private targets
    # (loopback, private, link-local, unique-local) are refused unless the operator allows
    # them (the local stack does); with outbound_loopback_only (every test run), nothing but
    # loopback may be reached, whatever a URL says.
    allow_private_targets: bool = False
    outbound_loopback_only: bool = False
    # Outgoing webhooks (docs/webhooks.md). Timings are settings so tests run in seconds.
    webhook_timeout_s: float = Field(default=15.0, gt=0, le=15.0)
    webhook_retry_schedule_s: str = "5,300,1800,7200,18000,36000,36000"
    webhook_claim_s: float = Field(default=60.0, gt=0)
    webhook_disable_after_s: float = 5 * 86400.0
    # A running preview with no new push for this long is stopped by the sweeper.
    preview_idle_s: int = 7 * 24 * 3600
    # The local sandbox (host/sandbox.py): without bwrap, builds and apps are refused unless
    # this allows them to run unsandboxed. Limits hold per build and per app; memory is
    # per process.
    allow_unsandboxed: bool = False
    sandbox_memory_mb: int = Field(default=2048, ge=16)
    sandbox_open_files: int = Field(default=1024, ge=16)
    sandbox_processes: int = Field(default=512, ge=4)
    # More directories a sandbox sees read-only (toolchains outside /usr and /opt), ":"-separated.
    sandbox_read_only: str = ""

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
    "aws_connect_timeout_s": "SHIPYARD_AWS_CONNECT_TIMEOUT_S",
    "aws_read_timeout_s": "SHIPYARD_AWS_READ_TIMEOUT_S",
    "aws_max_attempts": "SHIPYARD_AWS_MAX_ATTEMPTS",
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
    "upload_max_bytes": "SHIPYARD_UPLOAD_MAX_BYTES",
    "upload_expires_s": "SHIPYARD_UPLOAD_EXPIRES_S",
    "deploy_max_bytes": "SHIPYARD_DEPLOY_MAX_BYTES",
    "artifact_inline_max_bytes": "SHIPYARD_ARTIFACT_INLINE_MAX_BYTES",
    "pending_timeout_s": "SHIPYARD_PENDING_TIMEOUT_S",
    "pending_requeue_s": "SHIPYARD_PENDING_REQUEUE_S",
    "build_timeout_s": "SHIPYARD_BUILD_TIMEOUT_S",
    "deploy_timeout_s": "SHIPYARD_DEPLOY_TIMEOUT_S",
    "build_queue_max": "SHIPYARD_BUILD_QUEUE_MAX",
    "sse_wait_s": "SHIPYARD_SSE_WAIT_S",
    "sse_retry_ms": "SHIPYARD_SSE_RETRY_MS",
    "stream_ticket_ttl_s": "SHIPYARD_STREAM_TICKET_TTL_S",
    "log_gap_grace_s": "SHIPYARD_LOG_GAP_GRACE_S",
    "workflow_wait_s": "SHIPYARD_WORKFLOW_WAIT_S",
    "workflow_task_timeout_s": "SHIPYARD_WORKFLOW_TASK_TIMEOUT_S",
    "health_check_request_timeout_s": "SHIPYARD_HEALTH_CHECK_REQUEST_TIMEOUT_S",
    "drain_grace_s": "SHIPYARD_DRAIN_GRACE_S",
    "supervisor_tick_s": "SHIPYARD_SUPERVISOR_TICK_S",
    "restart_backoff_s": "SHIPYARD_RESTART_BACKOFF_S",
    "restart_backoff_max_s": "SHIPYARD_RESTART_BACKOFF_MAX_S",
    "deploy_workflow_arn": "SHIPYARD_DEPLOY_WORKFLOW_ARN",
    "state_dir": "SHIPYARD_STATE_DIR",
    "image_repository": "SHIPYARD_IMAGE_REPOSITORY",
    "app_role_arn": "SHIPYARD_APP_ROLE_ARN",
    "app_log_retention_days": "SHIPYARD_APP_LOG_RETENTION_DAYS",
    "allow_private_targets": "SHIPYARD_ALLOW_PRIVATE_TARGETS",
    "outbound_loopback_only": "SHIPYARD_OUTBOUND_LOOPBACK_ONLY",
    "webhook_timeout_s": "SHIPYARD_WEBHOOK_TIMEOUT_S",
    "webhook_retry_schedule_s": "SHIPYARD_WEBHOOK_RETRY_SCHEDULE_S",
    "webhook_claim_s": "SHIPYARD_WEBHOOK_CLAIM_S",
    "webhook_disable_after_s": "SHIPYARD_WEBHOOK_DISABLE_AFTER_S",
    "preview_idle_s": "SHIPYARD_PREVIEW_IDLE_S",
    "allow_unsandboxed": "SHIPYARD_ALLOW_UNSANDBOXED",
    "sandbox_memory_mb": "SHIPYARD_SANDBOX_MEMORY_MB",
    "sandbox_open_files": "SHIPYARD_SANDBOX_OPEN_FILES",
    "sandbox_processes": "SHIPYARD_SANDBOX_PROCESSES",
    "sandbox_read_only": "SHIPYARD_SANDBOX_READ_ONLY",
}


@cache
def get_settings() -> Settings:
    values = {field: os.environ[var] for field, var in _ENV.items() if os.environ.get(var)}
    return Settings(**values)


def state_dir(configured: str | None = None) -> Path:
    """The local stack's state directory (builds, apps, artifacts, the first key, the
    cursor secret): `configured`, else SHIPYARD_STATE_DIR as the environment says now, else
    .local/ in the checkout. The one place that decides it: the local stack asks before its
    settings exist, and a test changes it per test."""
    value = configured or os.environ.get(_ENV["state_dir"])
    return Path(value) if value else ROOT / ".local"
