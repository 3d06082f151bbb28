"""Projects and their environment variables: the rules. Storage is in store/projects.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.aws import kms
from chalicelib.core import ids, reactions
from chalicelib.core.clock import now_iso
from chalicelib.core.errors import ValidationFailed
from chalicelib.core.models import EnvUpdate, EnvVar, EnvVars, Project, ProjectCreate, ProjectUpdate
from chalicelib.core.pagination import Page
from chalicelib.core.slugs import slugify
from chalicelib.limits import quotas
from chalicelib.store import projects as store

LIST_NAME = "projects"
MAX_ENV_BYTES = 256 * 1024  # names and stored values (a secret counts encrypted)


def to_model(item: dict[str, Any]) -> Project:
    git = item.get("git")
    return Project(
        id=item["id"],
        workspace_id=item["workspace_id"],
        name=item["name"],
        slug=item["slug"],
        description=item.get("description"),
        runtime=item["runtime"],
        build=item.get("build", {}),
        run=item.get("run", {}),
        git={"repository": git["repository"], "branch": git["branch"]} if git else None,
        status=item.get("status", "idle"),
        url=item.get("url"),
        current_deployment_id=item.get("current_deployment_id"),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
    )


def create(workspace_id: str, body: ProjectCreate, tier: str, extra_operations=None) -> Project:
    """Create a project, counted against the tier's project limit in the same transaction."""
    now = now_iso()
    item = {
        "id": ids.new_id("prj"),
        "workspace_id": workspace_id,
        "name": body.name,
        "name_lc": body.name.lower(),
        "slug": body.slug or slugify(body.name, "project"),
        "description": body.description,
        "runtime": body.runtime,
        "build": body.build.model_dump(),
        "run": body.run.model_dump(),
        "git": body.git.model_dump() if body.git else None,
        "status": "idle",
        "env": {},
        "created_at": now,
        "updated_at": now,
    }
    with quotas.project_slot(workspace_id, tier) as slot:
        store.create(item, [*slot, *(extra_operations or [])])
    return to_model(item)


def get(workspace_id: str, project_id: str) -> Project:
    return to_model(store.get(workspace_id, project_id))


def list_name(status: str | None, search: str | None) -> str:
    """The list a page belongs to: projects, with these filters."""
    return json.dumps([LIST_NAME, status, search])


def list_projects(
    workspace_id: str, limit: int, start: dict | None, status: str | None, search: str | None
) -> Page:
    items, next_key = store.list_page(workspace_id, limit, start, status, search)
    return Page([to_model(i) for i in items], next_key, list_name(status, search), workspace_id)


def update(workspace_id: str, project_id: str, body: ProjectUpdate) -> Project:
    current = store.get(workspace_id, project_id)
    changes: dict[str, Any] = {}
    for field in body.model_fields_set:
        value = getattr(body, field)
        # null on a field that has no null state (every project has a name, a runtime,
        # build and run settings) leaves it as it is, as leaving the field out would.
        if field in ("name", "slug", "runtime", "build", "run") and value is None:
            continue
        if field in ("build", "run") and value is not None:
            value = {**current.get(field, {}), **value.model_dump(exclude_unset=True)}
        elif field == "git" and value is not None:
            value = value.model_dump()
        changes[field] = value
    if "name" in changes:
        changes["name_lc"] = changes["name"].lower()
    if not changes:
        return to_model(current)
    changes["updated_at"] = now_iso()
    store.update(workspace_id, project_id, changes, current["slug"])
    return to_model({**current, **{k: v for k, v in changes.items()}})


@dataclass(frozen=True)
class ProjectDeleted:
    """A project's deletion, committed: what it ran must stop and its data go."""

    project: dict[str, Any]


def delete(workspace_id: str, project_id: str, extra_operations=None) -> dict[str, Any]:
    current = store.get(workspace_id, project_id)
    operations = [*quotas.project_release(workspace_id), *(extra_operations or [])]
    store.delete(workspace_id, project_id, current["slug"], operations)
    reactions.publish(ProjectDeleted(current))
    return current


def _env_view(env: dict[str, Any]) -> EnvVars:
    return EnvVars(
        vars={
            key: EnvVar(value=None if entry["secret"] else entry["value"], secret=entry["secret"])
            for key, entry in sorted(env.items())
        }
    )


def get_env(workspace_id: str, project_id: str) -> EnvVars:
    return _env_view(store.get(workspace_id, project_id).get("env", {}))


def _env_bytes(env: dict[str, Any]) -> int:
    return sum(
        len(key) + len((entry.get("ciphertext") or entry.get("value") or "").encode())
        for key, entry in env.items()
    )


def put_env(workspace_id: str, project_id: str, body: EnvUpdate) -> EnvVars:
    current = store.get(workspace_id, project_id).get("env", {})
    now = now_iso()
    entries = {}
    for key, var in body.vars.items():
        if var.secret:
            context = {"project_id": project_id, "key": key}
            entries[key] = {"ciphertext": kms.encrypt(var.value, context), "secret": True}
        else:
            entries[key] = {"value": var.value, "secret": False}
        entries[key]["updated_at"] = now
    if not entries:
        return get_env(workspace_id, project_id)
    # A project is one DynamoDB item (at most 400 KB): its variables get a fixed share.
    if _env_bytes({**current, **entries}) > MAX_ENV_BYTES:
        raise ValidationFailed(
            {"vars": [f"a project's variables may take at most {MAX_ENV_BYTES // 1024} KiB"]}
        )
    item = store.set_env(workspace_id, project_id, entries)
    return _env_view(item.get("env", {}))


def delete_env(workspace_id: str, project_id: str, key: str) -> None:
    store.get(workspace_id, project_id)
    store.delete_env(workspace_id, project_id, key, now_iso())


def resolved_env(item: dict[str, Any]) -> dict[str, str]:
    """The plain values of a project's variables, secrets decrypted: what a build or a
    running app receives. Never returned by the API."""
    env = {}
    for key, entry in item.get("env", {}).items():
        if entry["secret"]:
            env[key] = kms.decrypt(entry["ciphertext"], {"project_id": item["id"], "key": key})
        else:
            env[key] = entry["value"]
    return env
