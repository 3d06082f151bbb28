"""Deployment log lines in DynamoDB: partition = deployment id, sort key = `seq`.

Sequence numbers come from the deployment item's `log_seq` counter: a writer reserves a
block with one atomic ADD, then writes its lines. Each line also records `written_ms`, so
a reader can tell a line still in flight from one whose writer died (deployments/logs.py).
"""

from __future__ import annotations

from typing import Any

from chalicelib.store.deployments import deployments, now_ms
from chalicelib.store.dynamo import Table, is_condition_failure

logs = Table("logs")


def reserve(project_id: str, deployment_id: str, count: int, ended: tuple[str, ...]) -> int | None:
    """Reserve `count` consecutive sequence numbers; returns the first, or None when the
    deployment is gone (its project was deleted while something still wrote) or its log
    has ended. A log ends with the line of the transition to running, failed, canceled or
    stopped (written with that transition); a running app's later output, say, is not
    part of it, so a client that saw the `done` frame has seen the whole log; `ended` are
    those statuses."""
    ended_values = {f":e{i}": status for i, status in enumerate(ended)}
    try:
        item = deployments.update(
            {"project_id": project_id, "id": deployment_id},
            "ADD log_seq :n SET log_reserved_ms = :ms",
            f"attribute_exists(id) AND NOT (#status IN ({', '.join(ended_values)}))",
            names={"#status": "status"},
            values={":n": count, ":ms": now_ms(), **ended_values},
        )
    except Exception as error:
        if is_condition_failure(error):
            return None
        raise
    return item["log_seq"] - count + 1


def put_lines(deployment_id: str, lines: list[dict[str, Any]]) -> None:
    """Write lines that already carry their `seq`."""
    written = now_ms()
    logs.batch_write(
        puts=[{**line, "deployment_id": deployment_id, "written_ms": written} for line in lines]
    )


def put_line(deployment_id: str, line: dict[str, Any]) -> None:
    logs.put({**line, "deployment_id": deployment_id, "written_ms": now_ms()})


def read_after(deployment_id: str, after: int, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` lines with seq > after, in order."""
    found, _ = logs.query_page(
        "deployment_id = :d AND seq > :after",
        {":d": deployment_id, ":after": after},
        limit,
        newest_first=False,
        key_of=lambda item: {"deployment_id": item["deployment_id"], "seq": item["seq"]},
    )
    return found


def delete_all(deployment_id: str) -> None:
    """Delete every line of a deployment's log."""
    logs.batch_write(
        deletes=[
            {"deployment_id": deployment_id, "seq": item["seq"]}
            for item in logs.query_all("deployment_id = :d", {":d": deployment_id})
        ]
    )
