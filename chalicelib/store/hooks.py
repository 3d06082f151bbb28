"""Incoming hooks in DynamoDB: deploy hooks, and the once-only claims of git events.

A deploy hook is found by the SHA-256 of its token (the table's key: the token itself is
never stored), and listed per project through the index `by_project`. A claim is an item
written with a condition so that only its first writer wins: a GitHub delivery id (kept 4
days: GitHub redelivers for up to 3) or a (project, sha) of a deployment, for the minute
after its first ask (single flight). DynamoDB's TTL deletes late or never (moto: never), so
an expired claim is recognised by comparing `expires_at` in the condition itself.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.store.dynamo import Table, is_condition_failure
from chalicelib.store.errors import Missing

deploy_hooks = Table("deploy_hooks")
claims = Table("git_claims")


def put_hook(item: dict[str, Any]) -> None:
    deploy_hooks.put(item, condition="attribute_not_exists(token_hash)")


def hook_by_token_hash(token_hash: str) -> dict[str, Any] | None:
    return deploy_hooks.get({"token_hash": token_hash})


def hooks_of_project(project_id: str, limit: int, start: dict | None):
    return deploy_hooks.query_page(
        "project_id = :p",
        {":p": project_id},
        limit,
        start_key=start,
        index="by_project",
        key_of=lambda item: {
            "token_hash": item["token_hash"],
            "project_id": item["project_id"],
            "id": item["id"],
        },
    )


def hook_of_project(project_id: str, hook_id: str) -> dict[str, Any] | None:
    found = deploy_hooks.query_all(
        "project_id = :p AND id = :id", {":p": project_id, ":id": hook_id}, index="by_project"
    )
    return next(found, None)


def delete_hook(token_hash: str) -> None:
    try:
        deploy_hooks.delete({"token_hash": token_hash}, condition="attribute_exists(token_hash)")
    except Exception as error:
        if is_condition_failure(error):
            raise Missing("Deploy hook") from None
        raise


def delete_hooks_of_project(project_id: str) -> None:
    keys = [
        {"token_hash": item["token_hash"]}
        for item in deploy_hooks.query_all(
            "project_id = :p", {":p": project_id}, index="by_project"
        )
    ]
    deploy_hooks.batch_write(deletes=keys)


def claim(claim_id: str, keep_s: int, fields: dict[str, Any] | None = None) -> dict | None:
    """Take the claim `claim_id` for `keep_s` seconds: None if this call took it, else the
    claim as its first writer left it (with what it recorded since: `record`)."""
    now = int(time.time())
    try:
        claims.put(
            {"id": claim_id, "expires_at": now + keep_s, **(fields or {})},
            condition="attribute_not_exists(id) OR expires_at < :now",
            values={":now": now},
        )
        return None
    except Exception as error:
        if not is_condition_failure(error):
            raise
    return claims.get({"id": claim_id}) or {}


def record(claim_id: str, fields: dict[str, Any]) -> None:
    """What came of a claim (the deployment it made), for the callers it turns away."""
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":f{i}": value for i, value in enumerate(fields.values())}
    sets = ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
    claims.update({"id": claim_id}, f"SET {sets}", "attribute_exists(id)", names, values)


def release(claim_id: str) -> None:
    """Give a claim back (its holder failed before it made anything)."""
    claims.delete({"id": claim_id})


def claim_of(claim_id: str) -> dict[str, Any] | None:
    return claims.get({"id": claim_id})


def touch_hook(token_hash: str, now: str) -> None:
    """Record a hook's last use (if it still exists)."""
    try:
        deploy_hooks.update(
            {"token_hash": token_hash},
            "SET last_used_at = :now",
            "attribute_exists(token_hash)",
            values={":now": now},
        )
    except Exception as error:
        if not is_condition_failure(error):
            raise
