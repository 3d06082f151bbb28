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
    """A deployment's snapshot, decrypted."""

    env: dict[str, str]
    secret_keys: list[str]

    @property
    def masker(self) -> Masker:
        return Masker(self.env[key] for key in self.secret_keys if key in self.env)


# Per deployment id, in this process: the snapshot just sealed, or the first one opened,
# for its build and its app's start (a few kept: an env can be 256 KiB), and the masker
# of its secrets, for every writer of its logs and errors (many kept: they are small).
_opened: RecentCache[_Opened] = RecentCache(size=32)
_maskers: RecentCache[Masker] = RecentCache()


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
    opened = _opened.put(deployment_id, _Opened(env, secret_keys))
    _maskers.put(deployment_id, opened.masker)
    return key


def snapshot_of(item: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The deployment's env, decrypted (a copy), and which of its keys are secret."""
    opened = _opened.get(item["id"], lambda: _read(item))
    if opened is None:
        raise ValueError(f"Deployment {item['id']} has no environment snapshot")
    return dict(opened.env), list(opened.secret_keys)


def _read(item: dict[str, Any] | None) -> _Opened | None:
    """None for a deployment without a snapshot (or none at all): not kept, as it may
    be read again once it has one."""
    if item is None or not item.get("env_key"):
        return None
    sealed = objects.get_bytes(item["env_key"]).decode()
    payload = json.loads(kms.unseal(sealed, {"project_id": item["project_id"]}))
    if payload.get("version") == SNAPSHOT_VERSION and isinstance(payload.get("env"), dict):
        return _Opened(payload["env"], payload["secret_keys"])
    return _Opened(payload, [])


def _masker(deployment_id: str, item: Callable[[], dict[str, Any] | None]) -> Masker:
    """The kept masker, or one made from the kept snapshot, or from the item's."""

    def build() -> Masker | None:
        opened = _opened.get(deployment_id, lambda: _read(item()))
        return opened.masker if opened is not None else None

    return _maskers.get(deployment_id, build) or NO_SECRETS


def env_of(item: dict[str, Any]) -> dict[str, str]:
    """The environment snapshot of a deployment, decrypted."""
    return snapshot_of(item)[0]


def masker_of(item: dict[str, Any]) -> Masker:
    """The masker of a deployment's secrets, built once per process. A partial item
    (`{"id", "project_id"}`) is completed from the table the first time."""
    return _masker(
        item["id"],
        lambda: item if "env_key" in item else store.get(item["project_id"], item["id"]),
    )


def mask_for_deployment(deployment: str | dict[str, Any]) -> Callable[[str], str]:
    """What anything written about a deployment goes through, given its id or its item
    (webhook payloads, say): its secrets' values become `***`. A deployment that does not
    exist has nothing to mask."""
    if isinstance(deployment, dict):
        return masker_of(deployment)
    return _masker(deployment, lambda: store.find(deployment))
