"""A deployment's environment: the snapshot of its project's env vars taken when it is
created (sealed with KMS in S3: what its build and its app receive, and what a rollback to
it restores), and the masker of its secrets (masking.py) that every writer of its logs and
errors goes through.

A snapshot records which keys were secret. Snapshots written before it did (a bare
`{key: value}` object) are still read; their values are all treated as plain, because
which of them were secret was not kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.aws import kms, objects
from chalicelib.deployments.masking import NO_SECRETS, Masker, RecentCache
from chalicelib.projects.service import resolved_env
from chalicelib.store import deployments as store

SNAPSHOT_VERSION = 2


@dataclass(frozen=True)
class _Opened:
    """A deployment's snapshot, decrypted, and the masker of its secrets."""

    env: dict[str, str]
    secret_keys: list[str]
    masker: Masker


_NOTHING = _Opened({}, [], NO_SECRETS)
# Per deployment id, in this process: the snapshot just sealed, or the first one opened
# (the build, the app's start and every log writer of one deployment read the same one).
_opened: RecentCache[_Opened] = RecentCache()


def snapshot_env(
    project: dict[str, Any], deployment_id: str, environment: str = "production"
) -> str:
    """Seal the project's current environment for this deployment: the variables of its
    environment (production or preview); returns the snapshot's S3 key."""
    key = f"env/{project['id']}/{deployment_id}.sealed"
    env = resolved_env(project, environment)
    secret_keys = sorted(
        k for k, entry in project.get("env", {}).items() if entry["secret"] and k in env
    )
    payload = {"version": SNAPSHOT_VERSION, "env": env, "secret_keys": secret_keys}
    sealed = kms.seal(json.dumps(payload).encode(), {"project_id": project["id"]})
    objects.put_bytes(key, sealed.encode())
    _opened.put(deployment_id, _open(env, secret_keys))
    return key


def snapshot_of(item: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The deployment's env, decrypted, and which of its keys are secret."""
    opened = _opened.get(item["id"], lambda: _read(item)) or _NOTHING
    return opened.env, opened.secret_keys


def _read(item: dict[str, Any] | None) -> _Opened | None:
    """None for a deployment without a snapshot (or none at all): not kept, as it may
    be read again once it has one."""
    if item is None or not item.get("env_key"):
        return None
    sealed = objects.get_bytes(item["env_key"]).decode()
    payload = json.loads(kms.unseal(sealed, {"project_id": item["project_id"]}))
    if payload.get("version") == SNAPSHOT_VERSION and isinstance(payload.get("env"), dict):
        return _open(payload["env"], payload["secret_keys"])
    return _open(payload, [])


def _open(env: dict[str, str], secret_keys: list[str]) -> _Opened:
    return _Opened(env, secret_keys, Masker(env[key] for key in secret_keys if key in env))


def env_of(item: dict[str, Any]) -> dict[str, str]:
    """The environment snapshot of a deployment, decrypted."""
    return snapshot_of(item)[0]


def masker_of(item: dict[str, Any]) -> Masker:
    """The masker of a deployment's secrets, built once per process. A partial item
    (`{"id", "project_id"}`) is completed from the table the first time."""

    def read() -> _Opened | None:
        return _read(item if "env_key" in item else store.get(item["project_id"], item["id"]))

    return (_opened.get(item["id"], read) or _NOTHING).masker


def mask_for_deployment(deployment: str | dict[str, Any]) -> Callable[[str], str]:
    """What anything written about a deployment goes through, given its id or its item
    (webhook payloads, say): its secrets' values become `***`. A deployment that does not
    exist has nothing to mask."""
    if isinstance(deployment, dict):
        return masker_of(deployment)
    return (_opened.get(deployment, lambda: _read(store.find(deployment))) or _NOTHING).masker
