"""The deploy workflow on Step Functions: start (named after the deployment, so a repeat
start is refused by Step Functions itself), stop, and the task-token answers."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from chalicelib.aws.clients import client
from chalicelib.aws.errors import error_code
from chalicelib.core.settings import get_settings

GONE = ("InvalidToken", "TaskTimedOut", "TaskDoesNotExist", "ExecutionDoesNotExist")


@cache
def _account() -> str:
    return client("sts").get_caller_identity()["Account"]


def state_machine_arn() -> str:
    settings = get_settings()
    if settings.deploy_workflow_arn:
        return settings.deploy_workflow_arn
    return (
        f"arn:aws:states:{settings.region}:{_account()}:stateMachine:"
        f"{settings.resource_prefix}-deploy"
    )


def execution_arn(name: str) -> str:
    machine = state_machine_arn()
    return machine.replace(":stateMachine:", ":execution:") + f":{name}"


def start(name: str, payload: dict[str, Any]) -> str:
    """Start an execution; an execution of that name already running is not an error."""
    try:
        return client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn(), name=name, input=json.dumps(payload)
        )["executionArn"]
    except Exception as error:
        if error_code(error) == "ExecutionAlreadyExists":
            return execution_arn(name)
        raise


def stop(name: str, cause: str) -> None:
    try:
        client("stepfunctions").stop_execution(
            executionArn=execution_arn(name), error="Shipyard.Stopped", cause=cause[:256]
        )
    except Exception as error:
        if error_code(error) not in GONE:
            raise


def succeed(token: str, output: dict[str, Any]) -> bool:
    """Answer a task; False when the workflow no longer waits for it (it moved on after a
    timeout or retry): that is done, not an error."""
    try:
        client("stepfunctions").send_task_success(taskToken=token, output=json.dumps(output))
        return True
    except Exception as error:
        if error_code(error) in GONE:
            return False
        raise


def fail(token: str, error_name: str, cause: str) -> bool:
    try:
        client("stepfunctions").send_task_failure(
            taskToken=token, error=error_name, cause=cause[:32768]
        )
        return True
    except Exception as error:
        if error_code(error) in GONE:
            return False
        raise
