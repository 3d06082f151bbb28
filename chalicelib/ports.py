"""The ports of the pipeline, in one place: what it needs from a build engine and from an
app runtime, as `typing.Protocol`s, with the types they share.

Adapters implement them side by side: `builders/local.py` (LocalBuildEngine) and
`builders/codebuild.py` with the image build of `pipeline/engines.py` (CodeBuildEngine) for
builds; `runtimes/local_apps.py` (LocalApps) and `runtimes/aws_lambda.py` (LambdaApps) for
apps. `pipeline/engines.py` picks them by stage. Nothing here knows DynamoDB or a domain
module: a deployment reaches an adapter as plain values (a BuildJob, an AppSpec, or the
deployment's record with at least `id`, `project_id` and, once started, `url`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.buildplan.model import BuildPlan

# A log line of a build or an app: (phase, message).
OnLog = Callable[[str, str], None]
# A text as it may be stored: a deployment's secrets masked.
Mask = Callable[[str], str]
# The longest line an adapter hands to OnLog; a longer one is handed in pieces. The log
# writer masks each message whole before it cuts it into stored lines of 8 KiB, so only a
# secret that straddles this much larger cut could be split.
MAX_LOG_LINE = 64 * 1024


@dataclass
class BuildJob:
    """What a build engine needs to build one deployment."""

    deployment_id: str
    project_id: str
    workspace_id: str
    source_key: str
    project_runtime: str
    build: dict
    run: dict
    env: dict[str, str] = field(default_factory=dict)
    timeout_s: int = 900
    # A git source instead of an archive: {"url": clone URL, "sha": the commit}.
    git: dict[str, str] | None = None
    # The keys of `env` that are secret: CodeBuild receives those from Parameter Store.
    secret_keys: tuple[str, ...] = ()


@dataclass
class BuildOutcome:
    """How a build ended: the plan and artifact it made, or why it failed."""

    ok: bool
    plan: BuildPlan | None
    artifact_key: str | None
    error_code: str | None
    error_message: str | None
    # What the build learnt about its source (a git commit's message): added to `source`.
    source: dict[str, str] = field(default_factory=dict)

    @classmethod
    def failed(cls, error_code: str, error_message: str) -> BuildOutcome:
        return cls(False, None, None, error_code, error_message)


OnFinished = Callable[[BuildOutcome], None]


class BuildEngine(Protocol):
    """Runs builds. `method` is what a deployment records as its `build_method`."""

    method: str

    def start(self, job: BuildJob, on_log: OnLog, on_finished: OnFinished) -> dict[str, Any]:
        """Start building `job`. Returns the facts to record on the deployment (a build id,
        the plan, the image it will push), possibly none. The outcome reaches `on_finished`
        once, from any thread, when the engine knows it in this process; an engine that
        runs elsewhere reports it through its own events instead (CodeBuild's state
        changes). A build that can't even start is a failed outcome, not an exception."""
        ...

    def cancel(self, deployment_id: str, build_id: str | None) -> None:
        """Stop a deployment's build, if it still runs; nothing if it has none."""
        ...


@dataclass(frozen=True)
class AppSpec:
    """What a runtime needs to start one deployment's app."""

    deployment_id: str
    project_id: str
    plan: BuildPlan
    artifact_key: str | None
    image_tag: str | None
    env: dict[str, str]
    health_check_path: str = "/"
    # What every line of the app's runtime log goes through before it is stored: the
    # deployment's secret values become `***` (deployments/masking.py).
    mask: Mask | None = None
    # The port of this machine to serve on when it is free: a restarted app asks for the
    # one it had, so the deployment's own URL keeps working (local runtimes only).
    port: int | None = None


class DeployFailed(Exception):
    """A deployment could not be started; the message says why, in words for the user."""


class AppRuntime(Protocol):
    """Runs the built apps of deployments. Each call is idempotent: the deploy workflow's
    tasks can come twice."""

    def start(self, spec: AppSpec, on_log: OnLog | None) -> str:
        """Start the app (or find it started) and return the deployment's own URL; raises
        DeployFailed when it can't start."""
        ...

    def health_check(self, item: dict[str, Any], path: str, timeout_s: float) -> tuple[bool, str]:
        """One HTTP check of the deployment's app: (healthy, what was seen)."""
        ...

    def alive(self, item: dict[str, Any]) -> tuple[bool, str]:
        """Whether the app still runs at all: (alive, why not)."""
        ...

    def promote(self, item: dict[str, Any]) -> str:
        """Make the deployment the one its project's URL serves; returns that URL. `item`
        carries `project_url`, the URL reserve_url gave the project (None if none)."""
        ...

    def reserve_url(self, project_id: str) -> str | None:
        """The stable URL of a new project, or None where it is known only at the first
        promote (a Lambda function URL)."""
        ...

    def release_url(self, project_id: str) -> None:
        """A deleted project's URL serves nothing any more."""
        ...

    def retire(self, item: dict[str, Any]) -> None:
        """Stop a replaced deployment once the requests it is serving have drained."""
        ...

    def runtime_note(self, item: dict[str, Any], message: str) -> None:
        """Write a supervisor line into the deployment's runtime log."""
        ...

    def runtime_logs(self, item: dict[str, Any], after: int, limit: int) -> list[dict[str, Any]]:
        """The runtime log's lines after seq `after`: {seq, timestamp, phase, message}."""
        ...

    def keep_serving(self) -> bool:
        """Start again whatever serves the project URLs if it stopped (the local edge);
        True if it had to."""
        ...

    def exit_code(self, item: dict[str, Any]) -> int | None:
        """How the deployment's app last ended, when known (negative: the signal)."""
        ...

    def access_logs(self, project_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        """The requests the project URL served after seq `after`: {seq, timestamp, method,
        path, status, duration_ms, bytes, deployment_id}."""
        ...

    def stop(self, item: dict[str, Any]) -> None:
        """Stop the deployment's app; nothing if it does not run."""
        ...
