"""Events from the tables' change records: what each committed change of a project, a
deployment or an API key means to users. Pure rules over the old and new images, so the
same record always makes the same events (and the same ids)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalicelib.events.service import new_event
from chalicelib.store.streams import images

Item = dict[str, Any]
# A deployment's statuses by phase (the status machine is deployments/status.py; these are
# the events' reading of it).
BUILDING = ("pending", "building")
DEPLOYING = ("built", "deploying")


def from_record(table: str, record: dict[str, Any]) -> list[Item]:
    """The events one stream record of `table` (its logical name) makes, as event items."""
    old, new = images(record)
    rule = RULES.get(table)
    if rule is None:
        return []
    change = record["dynamodb"]
    moment = datetime.fromtimestamp(float(change["ApproximateCreationDateTime"]), UTC)
    keys = ",".join(f"{k}={v}" for k, v in sorted(_flat(change["Keys"]).items()))
    events = []
    for event_type, workspace_id, data in rule(old, new):
        seed = f"{table}|{keys}|{change['SequenceNumber']}|{event_type}"
        events.append(new_event(workspace_id, event_type, data, moment, seed))
    return events


def _flat(keys: dict[str, Any]) -> dict[str, str]:
    return {name: next(iter(value.values())) for name, value in keys.items()}


def _project(old: Item | None, new: Item | None) -> list[tuple[str, str, Item]]:
    item = new or old or {}
    # The projects table also holds slug claims; only project items make events.
    if not str(item.get("sk", "")).startswith("prj_"):
        return []
    data = {"project_id": item["id"], "name": item.get("name"), "slug": item.get("slug")}
    if old is None and new is not None:
        return [("project.created", new["workspace_id"], data)]
    if new is None and old is not None:
        return [("project.deleted", old["workspace_id"], data)]
    return []


def deployment_data(item: Item) -> Item:
    runtime = item.get("runtime") or {}
    return {
        "deployment_id": item["id"],
        "project_id": item["project_id"],
        "number": item.get("number"),
        "status": item.get("status"),
        "environment": item.get("environment"),
        "error_code": item.get("error_code"),
        "error_message": item.get("error_message"),
        "restarts": runtime.get("restarts"),
    }


def _deployment(old: Item | None, new: Item | None) -> list[tuple[str, str, Item]]:
    if new is None or "workspace_id" not in new:
        return []
    workspace_id, data = new["workspace_id"], deployment_data(new)
    if old is None:
        return [("deployment.created", workspace_id, data)]
    found = []
    before, after = old.get("status"), new.get("status")
    if before != after:
        kind = _transition(before, after)
        if kind:
            found.append((kind, workspace_id, data))
    restarts = ((old.get("runtime") or {}).get("restarts") or 0, data["restarts"] or 0)
    if restarts[1] > restarts[0]:
        found.append(("deployment.crashed", workspace_id, data))
    return found


def _transition(before: str | None, after: str | None) -> str | None:
    if after == "canceled":
        return "deployment.canceled"
    if before == "pending" and after == "building":
        return "build.started"
    if before in BUILDING and after == "failed":
        return "build.failed"
    if before == "building" and after in ("built", "deploying", "running"):
        return "build.completed"
    if before in DEPLOYING and after == "running":
        return "deploy.completed"
    if before in DEPLOYING and after == "failed":
        return "deploy.failed"
    return None


def _api_key(old: Item | None, new: Item | None) -> list[tuple[str, str, Item]]:
    item = new or old or {}
    # Partner keys belong to no workspace: no workspace sees their events.
    if "workspace_id" not in item:
        return []
    data = {"key_id": item["id"], "name": item.get("name"), "prefix": item.get("prefix")}
    if old is None and new is not None:
        return [("api_key.created", item["workspace_id"], data)]
    if old is not None and new is not None and "revoked_at" in new and "revoked_at" not in old:
        return [("api_key.revoked", item["workspace_id"], data)]
    return []


RULES: dict[str, Callable[[Item | None, Item | None], list[tuple[str, str, Item]]]] = {
    "projects": _project,
    "deployments": _deployment,
    "api_keys": _api_key,
}
