"""The non-HTTP entry points that app.py binds: the builds and deploy-tasks queues,
CodeBuild's state changes and the sweeper's schedule. Each decodes its event and hands it
to the pipeline."""

from __future__ import annotations

from typing import Any

from chalicelib.core.log import logger
from chalicelib.pipeline import actions, builds, sweeper, wiring, workflow  # noqa: F401 - wires
from chalicelib.workers.sqs import each_message


def on_builds_message(event: Any) -> None:
    each_message(event, builds_message)


def builds_message(message: dict[str, Any]) -> None:
    """One message of the builds queue: a build to start, a git deployment's clone that
    succeeded (AWS) to build, or a deleted project to purge."""
    kind = message.get("kind")
    if kind == "build":
        builds.start(message["project_id"], message["deployment_id"])
    elif kind == "cloned":
        builds.cloned(message["project_id"], message["deployment_id"], message["build_id"])
    elif kind == "purge_project":
        actions.purge_project(message["project_id"])
    else:
        logger().warning("Unknown builds message", extra={"message_kind": kind})


def on_deploy_task(event: Any) -> None:
    each_message(event, workflow.handle)


def on_codebuild_state_change(event: Any) -> None:
    builds.codebuild_state_changed(event.to_dict())


def on_schedule(event: Any) -> dict[str, int]:
    return sweeper.sweep()
