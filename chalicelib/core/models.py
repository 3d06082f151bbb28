"""Request and response models of the public API (pydantic v2). openapi.py renders them."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from chalicelib.core.scopes import ALL, ROLE_NAMES, SCOPES
from chalicelib.core.tiers import TIER_NAMES


def _integral(value: Any) -> Any:
    """JSON Schema's integer includes 3.0: bodies are validated strictly (api/http.py), so
    an integral float becomes the int it is; any other value is left for the check."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Integer fields of request bodies: a plain int would refuse 3.0 under strict validation
# (the validator comes after the bounds, or pydantic drops them from the JSON schema).
Port = Annotated[int, Field(ge=1, le=65535), BeforeValidator(_integral)]
HealthCheckTimeout = Annotated[int, Field(ge=1, le=300), BeforeValidator(_integral)]
GraceHours = Annotated[int, Field(ge=0, le=168), BeforeValidator(_integral)]
Name = Annotated[str, Field(min_length=1, max_length=255)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
Command = Annotated[str, Field(min_length=1, max_length=2000)]
RelativePath = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^/\x00][^\x00]*$")]
EnvKey = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=255)]
Timestamp = Annotated[str, Field(examples=["2026-02-25T14:30:00Z"])]
Runtime = Literal["auto", "static", "node", "python"]
ProjectStatus = Literal["idle", "deploying", "running", "failed"]
PROJECT_STATUSES: tuple[str, ...] = ("idle", "deploying", "running", "failed")


class Model(BaseModel):
    """Every model of Shipyard's: its validator is built when first used, not on import,
    so a cold start pays only for the models its request needs."""

    model_config = ConfigDict(defer_build=True)


class Input(Model):
    """A request body: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class BuildSettings(Input):
    install_command: Command | None = None
    build_command: Command | None = None
    output_directory: RelativePath | None = None
    root_directory: RelativePath | None = None


class RunSettings(Input):
    start_command: Command | None = None
    port: Port | None = None
    health_check_path: Annotated[str, Field(pattern=r"^/", max_length=255)] = "/"
    health_check_timeout_s: HealthCheckTimeout = 30
    health_check_interval_s: Annotated[int, Field(ge=1, le=3600), BeforeValidator(_integral)] = 30
    auto_rollback: bool = False


# What a git ref (a branch, a tag, a sha, refs/...) may be, in the published schema as in
# git/refs.py: ASCII letters, digits, `_`, `-`, `@` and dots inside parts, parts joined by
# `/`; never a leading `-` (an option) or `.`, never `..`, whitespace or shell characters.
_REF_PART = r"[A-Za-z0-9_@-]+(\.[A-Za-z0-9_@-]+)*"
REF_PATTERN = rf"^[A-Za-z0-9_][A-Za-z0-9_@-]*(\.[A-Za-z0-9_@-]+)*(/{_REF_PART})*$"
# A repository: GitHub `owner/name`, an https clone URL (credentials allowed, redacted
# everywhere), or file:///absolute/path (the local stack only: git/repository.py).
# The parts of the URLs users give (clone URLs here, webhook URLs in webhooks/models.py):
# a path's characters, a host name or IPv4 address, a port from 0 to 65535.
URL_CHARS = r"[A-Za-z0-9._~%!$&'()*+,;=:@-]"
URL_HOST = rf"({URL_CHARS}+@)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*"
URL_PORT = r"(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
REPOSITORY_PATTERN = (
    r"^(\.?[A-Za-z0-9_-][A-Za-z0-9_.-]*/\.?[A-Za-z0-9_-][A-Za-z0-9_.-]*"
    rf"|https://{URL_HOST}{URL_PORT}(/{URL_CHARS}*)*/{URL_CHARS}+/?"
    rf"|file://(/{URL_CHARS}*)+)$"
)
Ref = Annotated[str, Field(min_length=1, max_length=255, pattern=REF_PATTERN)]
Repository = Annotated[
    str,
    Field(
        min_length=3,
        max_length=1000,
        pattern=REPOSITORY_PATTERN,
        description="GitHub owner/name, an https:// clone URL, or file:// (local stack)",
    ),
]


class GitSettingsInput(Input):
    repository: Repository
    branch: Ref = "main"
    webhook_secret: Annotated[str, Field(min_length=16, max_length=255)] | None = None


class GitSettings(Model):
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


class Project(Model):
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


Environment = Literal["production", "preview"]
ENVIRONMENTS: tuple[str, ...] = ("production", "preview")


class EnvVarInput(Input):
    value: Annotated[str, Field(max_length=32768)]
    secret: bool = False
    environments: Annotated[list[Environment], Field(min_length=1, max_length=2)] = Field(
        default_factory=lambda: list(ENVIRONMENTS)
    )

    @model_validator(mode="after")
    def _secret_fits_kms(self) -> EnvVarInput:
        if self.secret and len(self.value.encode()) > MAX_SECRET_BYTES:
            raise ValueError(f"a secret value is at most {MAX_SECRET_BYTES} bytes (UTF-8)")
        return self


def _keys_by_pattern(schema: dict[str, Any]) -> None:
    """The whole names rule (pattern and length) in one patternProperties, and no other
    name allowed: propertyNames is what generated clients and fuzzers overlook."""
    schema.pop("propertyNames", None)
    (value,) = schema.pop("patternProperties").values()
    schema["patternProperties"] = {ENV_KEY_PATTERN: value}
    schema["additionalProperties"] = False


ENV_KEY_PATTERN = r"^[A-Z_][A-Z0-9_]{0,254}$"


class EnvUpdate(Input):
    vars: Annotated[
        dict[EnvKey, EnvVarInput], Field(max_length=200, json_schema_extra=_keys_by_pattern)
    ]


class EnvVar(Model):
    value: str | None
    secret: bool
    environments: list[Environment]


class EnvVars(Model):
    vars: dict[str, EnvVar]


class DependencyState(Model):
    status: Literal["ok", "down"]
    latency_ms: float
    error: str | None = None


class Health(Model):
    status: Literal["ok", "degraded"]
    dependencies: dict[str, DependencyState]
    # The local stack's sandbox of builds and apps; absent on AWS, where IAM isolates them.
    sandbox: Literal["on", "off"] | None = None


Quantity = int | float


class UsageMetric(Model):
    used: Quantity
    limit: int | None = Field(description="null: unlimited")
    available: Quantity | None
    percentage: float | None
    reset_at: Timestamp | None = Field(description="null: a count, not reset by time")


class UsagePeriod(Model):
    start: Timestamp
    end: Timestamp


class Usage(Model):
    workspace_id: str
    tier: str
    period: UsagePeriod
    metrics: dict[str, UsageMetric]


class Entitlement(Model):
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
    grace_period_hours: GraceHours = 24


class ApiKey(Model):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    expires_at: Timestamp | None
    last_used_at: Timestamp | None
    created_at: Timestamp


class ApiKeyWithSecret(ApiKey):
    key: Annotated[str, Field(description="The key itself: shown only in this response")]


def _settings_size(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return value
    if len(json.dumps(value, default=str)) > MAX_SETTINGS_BYTES:
        raise ValueError(f"settings must be at most {MAX_SETTINGS_BYTES} bytes of JSON")
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


class Workspace(Model):
    id: str
    name: str
    slug: str
    tier: TierName
    settings: dict[str, Any]
    created_at: Timestamp
    updated_at: Timestamp


class PrincipalInfo(Model):
    type: Literal["workspace_key", "partner_key", "user"]
    id: str
    key_id: str | None
    partner_id: str | None
    user_id: str | None
    role: RoleName | None


class RateLimitInfo(Model):
    requests_per_minute: int
    burst: float
    capacity: int


class Me(Model):
    principal: PrincipalInfo
    workspace: Workspace | None
    scopes: list[str]
    tier: TierName
    rate_limit: RateLimitInfo
