"""The AWS runtime: a project is one Lambda function that runs its deployments' container images.

Each deployment publishes an immutable function version from its image and env, under an
alias named after the deployment, with its own public function URL (the deployment's `url`).
The alias `live` points at the version the project serves, behind the project's URL; promote
moves `live` (an atomic switch, and a rollback is the same move), stop removes what serves a
deployment. The images carry the Lambda Web Adapter (see `image.py`), so a plain HTTP app runs
unchanged. Why Lambda and not ECS/Fargate: docs/runtimes.md.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from chalicelib.aws.clients import client
from chalicelib.aws.errors import describe, error_code
from chalicelib.core.clock import rfc3339
from chalicelib.ports import AppSpec, DeployFailed, OnLog
from chalicelib.runtimes.image import DEFAULT_PORT

LIVE_ALIAS = "live"

# Lambda sets these itself and refuses a function that sets them.
RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_REGION",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LAMBDA_RUNTIME_DIR",
        "LAMBDA_TASK_ROOT",
    }
)

HttpGet = Callable[[str, float], int]


@dataclass
class LambdaApp:
    deployment_id: str
    function_name: str
    version: str
    url: str  # the deployment's own function URL


def http_status(url: str, timeout_s: float) -> int:
    """GET url and return its status code; redirects are answers, not followed."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout_s)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", target, headers={"User-Agent": "Shipyard-HealthCheck/1"})
        return connection.getresponse().status
    finally:
        connection.close()


class LambdaRuntime:
    def __init__(
        self,
        role_arn: str,
        function_prefix: str = "shipyard-app",
        memory_mb: int = 1024,
        timeout_s: int = 30,
        architecture: str = "x86_64",
        http_get: HttpGet = http_status,
        ready_timeout_s: float = 300.0,
        poll_s: float = 2.0,
        log_retention_days: int = 30,
    ) -> None:
        """role_arn: the execution role the apps' functions run as (logs only, by default);
        log_retention_days: how long each function's log group keeps its events (one of
        the values CloudWatch Logs accepts)."""
        self.role_arn = role_arn
        self.function_prefix = function_prefix
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self.architecture = architecture
        self.http_get = http_get
        self.ready_timeout_s = ready_timeout_s
        self.poll_s = poll_s
        self.log_retention_days = log_retention_days

    def function_name(self, project_id: str) -> str:
        return f"{self.function_prefix}-{project_id}"[:64]

    def deploy(
        self,
        deployment_id: str,
        project_id: str,
        image_uri: str,
        plan: Any,
        env: dict[str, str],
        health_check_path: str = "/",
    ) -> LambdaApp:
        """Publish the image and env as a new version with its own alias and public URL.

        Deploying the same deployment again finds the version the first attempt published
        (by its alias, or by its description if the alias was not made) and publishes none."""
        reserved = sorted(RESERVED_ENV.intersection(env))
        if reserved:
            raise DeployFailed(
                f"Lambda reserves these environment variables: {', '.join(reserved)}"
            )
        name = self.function_name(project_id)
        port = str(plan.port or DEFAULT_PORT)
        variables = {
            **env,
            "PORT": port,
            "AWS_LWA_PORT": port,
            "AWS_LWA_READINESS_CHECK_PATH": health_check_path,
            # Also makes each deployment's configuration distinct, so publishing always
            # yields a version of its own (Lambda reuses the last one when nothing changed).
            "SHIPYARD_DEPLOYMENT_ID": deployment_id,
        }
        try:
            version = self._version_of(name, deployment_id)
            if version is None:
                version = self._publish(name, project_id, deployment_id, image_uri, variables)
            self._point_alias(name, deployment_id, version)
            url = self._public_url(name, deployment_id)
        except Exception as error:
            if error_code(error) is None:
                raise
            raise DeployFailed(f"Lambda refused the deployment: {describe(error)}") from None
        return LambdaApp(deployment_id, name, version, url)

    def health_check(
        self, project_id: str, deployment_id: str, path: str, timeout_s: float
    ) -> tuple[bool, str]:
        """GET the deployment's own function URL + path: 2xx and 3xx are healthy."""
        name = self.function_name(project_id)
        try:
            config = _lambda().get_function_configuration(
                FunctionName=name, Qualifier=deployment_id
            )
            url = _lambda().get_function_url_config(FunctionName=name, Qualifier=deployment_id)
        except Exception as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            return False, "the deployment has no function version or URL"
        if config.get("State") == "Failed":
            return False, f"the function failed: {config.get('StateReason')}"
        path = path if path.startswith("/") else "/" + path
        try:
            status = self.http_get(url["FunctionUrl"].rstrip("/") + path, timeout_s)
        except (OSError, http.client.HTTPException) as error:
            return False, f"GET {path} failed: {error or type(error).__name__}"
        return 200 <= status < 400, f"GET {path} answered {status}"

    def promote(self, project_id: str, deployment_id: str) -> str:
        """Point the project's `live` alias at the deployment's version; the live URL."""
        name = self.function_name(project_id)
        try:
            version = _lambda().get_alias(FunctionName=name, Name=deployment_id)["FunctionVersion"]
            self._point_alias(name, LIVE_ALIAS, version)
            return self._public_url(name, LIVE_ALIAS)
        except Exception as error:
            if error_code(error) is None:
                raise
            raise DeployFailed(f"the deployment cannot be promoted: {describe(error)}") from None

    def live_version(self, project_id: str) -> str | None:
        """The function version the project's URL serves, None when it serves nothing."""
        try:
            alias = _lambda().get_alias(
                FunctionName=self.function_name(project_id), Name=LIVE_ALIAS
            )
        except Exception as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            return None
        return alias["FunctionVersion"]

    def stop(self, project_id: str, deployment_id: str) -> None:
        """Remove the deployment's URL, alias and version; also the live alias and URL when
        the project served this deployment. Idempotent."""
        name = self.function_name(project_id)
        version = self._version_of(name, deployment_id)
        _ignore_missing(
            _lambda().delete_function_url_config, FunctionName=name, Qualifier=deployment_id
        )
        _ignore_missing(_lambda().delete_alias, FunctionName=name, Name=deployment_id)
        if version is None:
            return
        if self.live_version(project_id) == version:
            _ignore_missing(
                _lambda().delete_function_url_config, FunctionName=name, Qualifier=LIVE_ALIAS
            )
            _ignore_missing(_lambda().delete_alias, FunctionName=name, Name=LIVE_ALIAS)
        _ignore_missing(_lambda().delete_function, FunctionName=name, Qualifier=version)

    def logs(
        self, project_id: str, deployment_id: str, after: int, limit: int
    ) -> list[dict[str, Any]]:
        """The deployment's runtime log from CloudWatch Logs: the events of its version's
        log streams (`YYYY/MM/DD/[<version>]...`) in the function's log group. A line's seq
        is its timestamp in ms * 1000 + its rank within that ms, so `after` is a time too."""
        name = self.function_name(project_id)
        version = self._version_of(name, deployment_id)
        if version is None:
            return []
        marker = f"[{version}]"
        params: dict[str, Any] = {
            "logGroupName": log_group(name),
            "startTime": after // 1000,
            "interleaved": True,
        }
        found: list[dict[str, Any]] = []
        last_ms, rank = -1, 0
        while True:
            try:
                page = _logs().filter_log_events(**params)
            except Exception as error:
                if error_code(error) == "ResourceNotFoundException":
                    return found
                raise
            for event in page.get("events", []):
                if marker not in event["logStreamName"]:
                    continue
                rank = rank + 1 if event["timestamp"] == last_ms else 0
                last_ms = event["timestamp"]
                seq = event["timestamp"] * 1000 + rank
                if seq <= after:
                    continue
                found.append(
                    {
                        "seq": seq,
                        "timestamp": rfc3339(datetime.fromtimestamp(last_ms / 1000, UTC)),
                        "phase": "app",
                        "message": event["message"].rstrip("\n"),
                    }
                )
                if len(found) >= limit:
                    return found
            if not page.get("nextToken"):
                return found
            params["nextToken"] = page["nextToken"]

    def delete_project(self, project_id: str) -> None:
        """Delete the project's function with every version, alias and URL. Idempotent."""
        _ignore_missing(_lambda().delete_function, FunctionName=self.function_name(project_id))

    def _publish(
        self,
        name: str,
        project_id: str,
        deployment_id: str,
        image_uri: str,
        variables: dict[str, str],
    ) -> str:
        settled = self._put_function(name, project_id, image_uri, variables)
        # Publish exactly what was just put: a concurrent change to $LATEST fails this.
        guard = {"CodeSha256": settled["CodeSha256"]}
        if settled.get("RevisionId"):
            guard["RevisionId"] = settled["RevisionId"]
        published = _lambda().publish_version(FunctionName=name, Description=deployment_id, **guard)
        return published["Version"]

    def _put_function(
        self, name: str, project_id: str, image_uri: str, variables: dict[str, str]
    ) -> dict[str, Any]:
        """Create the function or update its $LATEST; its settled configuration."""
        self._keep_logs(name)
        settings = {
            "Role": self.role_arn,
            "Environment": {"Variables": variables},
            "MemorySize": self.memory_mb,
            "Timeout": self.timeout_s,
        }
        if self._exists(name):
            self._settled(name)
            _lambda().update_function_code(FunctionName=name, ImageUri=image_uri)
            self._settled(name)
            _lambda().update_function_configuration(FunctionName=name, **settings)
        else:
            _lambda().create_function(
                FunctionName=name,
                PackageType="Image",
                Code={"ImageUri": image_uri},
                Architectures=[self.architecture],
                Description=f"Shipyard project {project_id}",
                Tags={"shipyard:project": project_id},
                **settings,
            )
        return self._settled(name)

    def _keep_logs(self, name: str) -> None:
        """Create the function's log group before Lambda does (Lambda's own keeps events
        forever) and set its retention. Every publish sets it again: a deploy cut short
        between the two calls is finished by the next, and a changed setting reaches the
        projects as they deploy."""
        try:
            _logs().create_log_group(logGroupName=log_group(name))
        except Exception as error:
            if error_code(error) != "ResourceAlreadyExistsException":
                raise
        _logs().put_retention_policy(
            logGroupName=log_group(name), retentionInDays=self.log_retention_days
        )

    def _exists(self, name: str) -> bool:
        try:
            _lambda().get_function_configuration(FunctionName=name)
        except Exception as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            return False
        return True

    def _settled(self, name: str) -> dict[str, Any]:
        """Wait until the function is active with no update in progress; its configuration."""
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            config = _lambda().get_function_configuration(FunctionName=name)
            state, update = config.get("State"), config.get("LastUpdateStatus")
            if state == "Failed" or update == "Failed":
                reason = config.get("StateReason") or config.get("LastUpdateStatusReason")
                raise DeployFailed(f"the function could not be updated: {reason}")
            if state in (None, "Active", "Inactive") and update in (None, "Successful"):
                return config
            if time.monotonic() > deadline:
                raise DeployFailed(
                    f"the function was not ready after {self.ready_timeout_s:.0f}s "
                    f"(state {state}, last update {update})"
                )
            time.sleep(self.poll_s)

    def _point_alias(self, name: str, alias: str, version: str) -> None:
        try:
            _lambda().get_alias(FunctionName=name, Name=alias)
        except Exception as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            _lambda().create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
            return
        _lambda().update_alias(FunctionName=name, Name=alias, FunctionVersion=version)

    def _public_url(self, name: str, alias: str) -> str:
        """The alias's function URL (created if missing), open to anyone as a web site is."""
        try:
            url = _lambda().create_function_url_config(
                FunctionName=name, Qualifier=alias, AuthType="NONE", InvokeMode="BUFFERED"
            )
        except Exception as error:
            if error_code(error) != "ResourceConflictException":
                raise
            url = _lambda().get_function_url_config(FunctionName=name, Qualifier=alias)
        # A public function URL needs both grants (lambda:InvokeFunction only through the URL).
        grants = (
            (f"url-{alias}", {"Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": "NONE"}),
            (f"invoke-{alias}", {"Action": "lambda:InvokeFunction", "InvokedViaFunctionUrl": True}),
        )
        for statement_id, grant in grants:
            try:
                _lambda().add_permission(
                    FunctionName=name,
                    Qualifier=alias,
                    StatementId=statement_id,
                    Principal="*",
                    **grant,
                )
            except Exception as error:
                if error_code(error) != "ResourceConflictException":
                    raise
        return url["FunctionUrl"]

    def _version_of(self, name: str, deployment_id: str) -> str | None:
        try:
            return _lambda().get_alias(FunctionName=name, Name=deployment_id)["FunctionVersion"]
        except Exception as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
        # No alias (a deploy or stop cut short): the version's description names its deployment.
        try:
            for page in (
                _lambda().get_paginator("list_versions_by_function").paginate(FunctionName=name)
            ):
                for version in page["Versions"]:
                    if (
                        version["Version"] != "$LATEST"
                        and version.get("Description") == deployment_id
                    ):
                        return version["Version"]
        except Exception as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
        return None


def log_group(function_name: str) -> str:
    """The CloudWatch Logs group Lambda writes a function's logs to."""
    return f"/aws/lambda/{function_name}"


def _lambda() -> Any:
    return client("lambda")


def _logs() -> Any:
    return client("logs")


def _ignore_missing(call: Callable[..., Any], **params: Any) -> None:
    try:
        call(**params)
    except Exception as error:
        if error_code(error) != "ResourceNotFoundException":
            raise


class LambdaApps:
    """The runtime port (ports.AppRuntime) on AWS: deployments as Lambda versions of the
    project's function, from the image the deployment's CodeBuild build pushed
    (`image_tag`). The project's URL is the function URL of its `live` alias."""

    def __init__(self, runtime: LambdaRuntime) -> None:
        self.runtime = runtime

    def start(self, spec: AppSpec, on_log: OnLog | None) -> str:
        if not spec.image_tag:
            raise DeployFailed("The build pushed no image to run")
        app = self.runtime.deploy(
            spec.deployment_id,
            spec.project_id,
            spec.image_tag,
            spec.plan,
            spec.env,
            spec.health_check_path,
        )
        return app.url

    def health_check(self, item: dict[str, Any], path: str, timeout_s: float) -> tuple[bool, str]:
        return self.runtime.health_check(item["project_id"], item["id"], path, timeout_s)

    def alive(self, item: dict[str, Any]) -> tuple[bool, str]:
        return True, "a Lambda version is always ready to be invoked"

    def promote(self, item: dict[str, Any]) -> str:
        return self.runtime.promote(item["project_id"], item["id"])

    def stop(self, item: dict[str, Any]) -> None:
        self.runtime.stop(item["project_id"], item["id"])

    def reserve_url(self, project_id: str) -> str | None:
        # The live alias's function URL exists once a first version is promoted.
        return None

    def release_url(self, project_id: str) -> None:
        """Deleting the project's function (delete_project) takes its URLs along."""

    def retire(self, item: dict[str, Any]) -> None:
        # Invocations in flight finish on their version; the alias already moved.
        self.stop(item)

    def keep_serving(self) -> bool:
        return False  # Lambda serves function URLs itself

    def exit_code(self, item: dict[str, Any]) -> int | None:
        return None

    def runtime_note(self, item: dict[str, Any], message: str) -> None:
        """Lambda supervises its own execution environments: Shipyard has no lines to add."""

    def runtime_logs(self, item: dict[str, Any], after: int, limit: int) -> list[dict[str, Any]]:
        return self.runtime.logs(item["project_id"], item["id"], after, limit)

    def access_logs(self, project_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        # Function URLs write no access log of their own (docs/runtimes.md).
        return []
