"""Projects and their environment variables: the rules. Storage is in store/projects.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.aws import kms
from chalicelib.core import ids, reactions
from chalicelib.core.clock import now_iso
from chalicelib.core.errors import ValidationFailed
from chalicelib.core.models import (
    ENVIRONMENTS,
    EnvUpdate,
    EnvVar,
    EnvVars,
    GitSettingsInput,
    Project,
    ProjectCreate,
    ProjectUpdate,
)
from chalicelib.core.pagination import Page
from chalicelib.core.settings import get_settings
from chalicelib.core.slugs import slugify
from chalicelib.git import repository as repositories
from chalicelib.git.refs import redact
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


def create(
    workspace_id: str,
    body: ProjectCreate,
    tier: str,
    extra_operations=None,
    project_id: str | None = None,
    url: str | None = None,
) -> Project:
    """Create a project, counted against the tier's project limit in the same transaction.
    `url` is its stable URL when the runtime reserved one (for `project_id`)."""
    now = now_iso()
    item = {
        "id": project_id or ids.new_id("prj"),
        "workspace_id": workspace_id,
        "name": body.name,
        "name_lc": body.name.lower(),
        "slug": body.slug or slugify(body.name, "project"),
        "description": body.description,
        "runtime": body.runtime,
        "build": body.build.model_dump(),
        "run": body.run.model_dump(),
        "git": _git_item(body.git, None, None),
        "status": "idle",
        "url": url,
        "env": {},
        "created_at": now,
        "updated_at": now,
    }
    if body.git is not None:
        item["git_match"] = repositories.match_key(body.git.repository)
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
            changes["git_match"] = repositories.match_key(value.repository)
            value = _git_item(value, current.get("git"), project_id)
        elif field == "git":
            changes["git_match"] = None
        changes[field] = value
    if "name" in changes:
        changes["name_lc"] = changes["name"].lower()
    if not changes:
        return to_model(current)
    changes["updated_at"] = now_iso()
    store.update(workspace_id, project_id, changes, current["slug"])
    return to_model({**current, **{k: v for k, v in changes.items()}})


def _git_item(
    git: GitSettingsInput | None, before: dict[str, Any] | None, project_id: str | None
) -> dict[str, Any] | None:
    """The stored form of a project's git settings: the repository with any credentials
    redacted, and what must stay secret (a clone URL with credentials, the webhook secret)
    encrypted with KMS. A webhook secret left out of an update keeps the current one."""
    if git is None:
        return None
    try:
        repositories.check(git.repository, get_settings().stage)
    except repositories.BadRepository as error:
        raise ValidationFailed({"git.repository": [str(error)]}) from None
    item: dict[str, Any] = {"repository": redact(git.repository), "branch": git.branch}
    context = {"purpose": "git"}
    if item["repository"] != git.repository:
        item["clone_url_ciphertext"] = kms.encrypt(git.repository, context)
    if git.webhook_secret is not None:
        item["webhook_secret_ciphertext"] = kms.encrypt(git.webhook_secret, context)
    elif before and before.get("webhook_secret_ciphertext"):
        item["webhook_secret_ciphertext"] = before["webhook_secret_ciphertext"]
    return item


def clone_url(project: dict[str, Any]) -> str:
    """Where a project's repository is cloned from, credentials included: for git alone."""
    git = project["git"]
    if git.get("clone_url_ciphertext"):
        return kms.decrypt(git["clone_url_ciphertext"], {"purpose": "git"})
    return repositories.clone_url(git["repository"])


def webhook_secret(project: dict[str, Any]) -> str | None:
    git = project.get("git") or {}
    if not git.get("webhook_secret_ciphertext"):
        return None
    return kms.decrypt(git["webhook_secret_ciphertext"], {"purpose": "git"})


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
            key: EnvVar(
                value=None if entry["secret"] else entry["value"],
                secret=entry["secret"],
                environments=entry.get("environments", list(ENVIRONMENTS)),
            )
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
        entries[key]["environments"] = [e for e in ENVIRONMENTS if e in var.environments]
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


def resolved_env(item: dict[str, Any], environment: str = "production") -> dict[str, str]:
    """The plain values of a project's variables for one environment, secrets decrypted:
    what a build or a running app of that environment receives. Never returned by the API."""
    env = {}
    for key, entry in item.get("env", {}).items():
        if environment not in entry.get("environments", ENVIRONMENTS):
            continue
        if entry["secret"]:
            env[key] = kms.decrypt(entry["ciphertext"], {"project_id": item["id"], "key": key})
        else:
            env[key] = entry["value"]
    return env
