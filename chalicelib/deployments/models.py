"""Request and response models of uploads, deployments, logs and releases (pydantic v2);
openapi.py renders them with the rest of the API's models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from chalicelib.core.models import (
    Environment,
    Input,
    Model,
    Ref,
    RelativePath,
    Repository,
    Timestamp,
)
from chalicelib.deployments.status import STATUSES

# Built from the status table, so the API's enum cannot drift from the status machine.
DeploymentStatus = Literal[STATUSES]  # type: ignore[valid-type]
ErrorCode = Literal[
    "invalid_archive",
    "build_failed",
    "deploy_failed",
    "health_check_failed",
    "timed_out",
    "crashed",
    "internal_error",
]
SourceType = Literal["upload", "git", "redeploy", "rollback", "retry"]
Phase = Literal["build", "deploy", "system", "app", "runtime"]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Note = Annotated[str, Field(max_length=1000)]


class UploadCreate(Input):
    sha256: Sha256 | None = None


class Upload(Model):
    id: str
    url: str
    fields: dict[str, str]
    max_bytes: int
    expires_at: Timestamp


# What a model's `one_source` validator checks, in the published schema: exactly one of
# upload_id and git.
ONE_SOURCE = ConfigDict(
    json_schema_extra={
        "oneOf": [
            {"required": ["upload_id"], "properties": {"upload_id": {"type": "string"}}},
            {"required": ["git"], "properties": {"git": {"type": "object"}}},
        ]
    }
)


class GitRef(Input):
    ref: Ref


class DeploymentCreate(Input):
    model_config = ONE_SOURCE
    upload_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    git: GitRef | None = None
    note: Note | None = None

    @model_validator(mode="after")
    def one_source(self) -> DeploymentCreate:
        if (self.upload_id is None) == (self.git is None):
            raise ValueError("Give exactly one of upload_id or git")
        return self


class RollbackRequest(Input):
    deployment_id: Annotated[str, Field(min_length=1, max_length=64)]
    note: Note | None = None


class RedeployRequest(Input):
    note: Note | None = None


class DeploymentSource(Model):
    type: SourceType
    upload_id: str | None = None
    deployment_id: str | None = None
    ref: str | None = None
    sha: str | None = None
    branch: str | None = None
    message: Annotated[str | None, Field(description="The commit message's first line")] = None
    trigger: Annotated[
        Literal["api", "github", "deploy_hook"] | None,
        Field(description="What started a git deployment"),
    ] = None


class Runtime(Model):
    """How a running deployment's app has fared under supervision."""

    state: Literal["starting", "up", "restarting", "crashed", "stopped"]
    restarts: int
    last_exit_code: int | None
    last_restart_at: Timestamp | None


class Deployment(Model):
    id: str
    project_id: str
    number: int
    status: DeploymentStatus
    environment: Environment
    source: DeploymentSource
    retry_of: str | None
    build_method: str | None
    framework: str | None
    image_tag: str | None
    url: str | None
    release_id: str | None
    runtime: Runtime | None = None
    error_code: ErrorCode | None
    error_message: str | None
    note: str | None
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None


class LogLine(Model):
    seq: int
    timestamp: Timestamp
    phase: Phase
    message: str


class LogCursor(Model):
    next_cursor: Annotated[str, Field(description="The seq to pass as ?after= next")]
    has_more: bool


class LogPage(Model):
    """A page of a deployment's log and the deployment's status, as one JSON document."""

    data: list[LogLine]
    pagination: LogCursor
    status: DeploymentStatus


class Release(Model):
    id: str
    version: int
    deployment_id: str
    created_at: Timestamp


class DetectGit(Input):
    repository: Repository
    ref: Ref = "main"


class DetectRequest(Input):
    model_config = ONE_SOURCE
    upload_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    git: DetectGit | None = None
    root_directory: RelativePath | None = None

    @model_validator(mode="after")
    def one_source(self) -> DetectRequest:
        if (self.upload_id is None) == (self.git is None):
            raise ValueError("Give exactly one of upload_id or git")
        return self


class Detection(Model):
    runtime: str
    framework: str | None
    install_command: str | None
    build_command: str | None
    start_command: str | None
    output_directory: str | None
    runs_server: bool
    evidence: list[str]
    confidence: Annotated[float, Field(ge=0, le=1)]


class DeployHookCreate(Input):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    # The same rules as a deployment's git.ref: a hook never stores a ref git can't be given.
    ref: Annotated[Ref | None, Field(description="Default: the project's git.branch")] = None


class DeployHook(Model):
    id: str
    project_id: str
    name: str
    ref: str | None
    created_at: Timestamp
    last_used_at: Timestamp | None


class DeployHookWithUrl(DeployHook):
    url: Annotated[str, Field(description="The secret URL to POST to: shown only here")]


class ArtifactFile(Model):
    path: str
    size: int
    type: Literal["file", "directory", "symlink"]


class StreamTicket(Model):
    ticket: str
    expires_at: Timestamp
