"""Request and response models of the public API (pydantic v2). openapi.py renders them."""

from __future__ import annotations

import decimal
import json
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from chalicelib.core.scopes import ALL, ROLE_NAMES, SCOPES
from chalicelib.core.tiers import TIER_NAMES

Name = Annotated[str, Field(min_length=1, max_length=255)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
Command = Annotated[str, Field(min_length=1, max_length=2000)]
RelativePath = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^/\x00][^\x00]*$")]
EnvKey = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=255)]
Timestamp = Annotated[str, Field(examples=["2026-02-25T14:30:00Z"])]
Runtime = Literal["auto", "static", "node", "python"]
ProjectStatus = Literal["idle", "deploying", "running", "failed"]
PROJECT_STATUSES: tuple[str, ...] = ("idle", "deploying", "running", "failed")


class Input(BaseModel):
    """A request body: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class BuildSettings(Input):
    install_command: Command | None = None
    build_command: Command | None = None
    output_directory: RelativePath | None = None
    root_directory: RelativePath | None = None


class RunSettings(Input):
    start_command: Command | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    health_check_path: Annotated[str, Field(pattern=r"^/", max_length=255)] = "/"
    health_check_timeout_s: Annotated[int, Field(ge=1, le=300)] = 30


class GitSettingsInput(Input):
    repository: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", max_length=200)]
    branch: Annotated[str, Field(min_length=1, max_length=255)] = "main"
    webhook_secret: Annotated[str, Field(min_length=16, max_length=255)] | None = None


class GitSettings(BaseModel):
    repository: str
    branch: str


class ProjectCreate(Input):
    name: Name
    slug: Slug | None = None
    description: Annotated[str, Field(max_length=1000)] | None = None
    runtime: Runtime = "auto"
    build: BuildSettings = Field(default_factory=BuildSettings)
    run: RunSettings = Field(default_factory=RunSettings)
    git: GitSettingsInput | None = None


class ProjectUpdate(Input):
    name: Name | None = None
    slug: Slug | None = None
    description: Annotated[str, Field(max_length=1000)] | None = None
    runtime: Runtime | None = None
    build: BuildSettings | None = None
    run: RunSettings | None = None
    git: GitSettingsInput | None = None


class Project(BaseModel):
    id: str
    workspace_id: str
    name: str
    slug: str
    description: str | None
    runtime: Runtime
    build: BuildSettings
    run: RunSettings
    git: GitSettings | None
    status: ProjectStatus
    url: str | None
    current_deployment_id: str | None
    created_at: Timestamp
    updated_at: Timestamp


MAX_SECRET_BYTES = 4096  # what one KMS Encrypt call takes


class EnvVarInput(Input):
    value: Annotated[str, Field(max_length=32768)]
    secret: bool = False

    @model_validator(mode="after")
    def _secret_fits_kms(self) -> EnvVarInput:
        if self.secret and len(self.value.encode()) > MAX_SECRET_BYTES:
            raise ValueError(f"a secret value is at most {MAX_SECRET_BYTES} bytes (UTF-8)")
        return self


class EnvUpdate(Input):
    vars: Annotated[dict[EnvKey, EnvVarInput], Field(max_length=200)]


class EnvVar(BaseModel):
    value: str | None
    secret: bool


class EnvVars(BaseModel):
    vars: dict[str, EnvVar]


class DependencyState(BaseModel):
    status: Literal["ok", "down"]
    latency_ms: float
    error: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    dependencies: dict[str, DependencyState]
    # The local stack's sandbox of builds and apps; absent on AWS, where IAM isolates them.
    sandbox: Literal["on", "off"] | None = None


Quantity = int | float


class UsageMetric(BaseModel):
    used: Quantity
    limit: int | None = Field(description="null: unlimited")
    available: Quantity | None
    percentage: float | None
    reset_at: Timestamp | None = Field(description="null: a count, not reset by time")


class UsagePeriod(BaseModel):
    start: Timestamp
    end: Timestamp


class Usage(BaseModel):
    workspace_id: str
    tier: str
    period: UsagePeriod
    metrics: dict[str, UsageMetric]


class Entitlement(BaseModel):
    allowed: bool
    feature: str
    current_usage: Quantity
    limit: int | None
    available: Quantity | None
    reason: Literal["feature_limit_reached", "quota_exceeded"] | None


# Built from the one list of each, so the API's enums cannot drift from the rules.
ScopeName = Literal[(ALL, *SCOPES)]  # type: ignore[valid-type]
TierName = Literal[TIER_NAMES]  # type: ignore[valid-type]
RoleName = Literal[ROLE_NAMES]  # type: ignore[valid-type]
MAX_SETTINGS_BYTES = 16 * 1024


class ApiKeyCreate(Input):
    name: Name
    scopes: Annotated[list[ScopeName], Field(min_length=1, max_length=12)]
    expires_at: AwareDatetime | None = None


class ApiKeyRotate(Input):
    grace_period_hours: Annotated[int, Field(ge=0, le=168, strict=True)] = 24


class ApiKey(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    expires_at: Timestamp | None
    last_used_at: Timestamp | None
    created_at: Timestamp


class ApiKeyWithSecret(ApiKey):
    key: Annotated[str, Field(description="The key itself: shown only in this response")]


MAX_SETTINGS_DEPTH = 16
# DynamoDB's numbers: 38 significant digits, magnitudes from 1e-130 to below 1e126.
_DYNAMODB_NUMBERS = decimal.Context(
    prec=38,
    Emin=-128,
    Emax=126,
    traps=[decimal.Inexact, decimal.Rounded, decimal.Overflow, decimal.Underflow],
)


def _storable(value: Any, depth: int) -> None:
    """Refuse what DynamoDB can't hold (its map nesting and number limits, empty map keys)
    here, as a 422, rather than as a failed write."""
    if depth > MAX_SETTINGS_DEPTH:
        raise ValueError(f"settings may be nested at most {MAX_SETTINGS_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            if not key:
                raise ValueError("settings keys must not be empty, at any level")
            _storable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _storable(item, depth + 1)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            _DYNAMODB_NUMBERS.create_decimal(str(value))
        except decimal.DecimalException:
            raise ValueError(
                f"settings numbers must have at most 38 digits and lie within 1e-130..1e125,"
                f" not {str(value)[:40]}"
            ) from None


def _settings_size(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return value
    if len(json.dumps(value, default=str)) > MAX_SETTINGS_BYTES:
        raise ValueError(f"settings must be at most {MAX_SETTINGS_BYTES} bytes of JSON")
    _storable(value, 1)
    return value


SettingsKey = Annotated[str, Field(min_length=1, max_length=64)]
WorkspaceSettings = Annotated[
    dict[SettingsKey, Any], Field(max_length=50), AfterValidator(_settings_size)
]


class WorkspaceCreate(Input):
    name: Name
    slug: Slug | None = None
    tier: TierName | None = None
    settings: WorkspaceSettings | None = None


class WorkspaceUpdate(Input):
    name: Name | None = None
    slug: Slug | None = None
    tier: TierName | None = None
    settings: Annotated[
        WorkspaceSettings | None,
        Field(description="Merged into the current settings; a key set to null is removed"),
    ] = None


class Workspace(BaseModel):
    id: str
    name: str
    slug: str
    tier: TierName
    settings: dict[str, Any]
    created_at: Timestamp
    updated_at: Timestamp


class PrincipalInfo(BaseModel):
    type: Literal["workspace_key", "partner_key", "user"]
    id: str
    key_id: str | None
    partner_id: str | None
    user_id: str | None
    role: RoleName | None


class RateLimitInfo(BaseModel):
    requests_per_minute: int
    burst: float
    capacity: int


class Me(BaseModel):
    principal: PrincipalInfo
    workspace: Workspace | None
    scopes: list[str]
    tier: TierName
    rate_limit: RateLimitInfo
