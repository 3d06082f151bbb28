"""Scopes, the roles of workspace members and the scopes each role holds, and the checks
that a principal holds a scope or may hand one on."""

from __future__ import annotations

ALL = "*"
SCOPES = (
    "workspaces:read",
    "workspaces:write",
    "api-keys:read",
    "api-keys:write",
    "projects:read",
    "projects:write",
    "deployments:read",
    "deployments:write",
    "webhooks:read",
    "webhooks:write",
    "usage:read",
)
READ_SCOPES = tuple(scope for scope in SCOPES if scope.endswith(":read"))

# A user's scopes in a workspace come from their role there. Only the owner may rename
# or delete the workspace; admins run everything in it; developers build and deploy;
# viewers read.
ROLES: dict[str, tuple[str, ...]] = {
    "owner": (ALL,),
    "admin": tuple(scope for scope in SCOPES if scope != "workspaces:write"),
    "developer": (
        "workspaces:read",
        "api-keys:read",
        "api-keys:write",
        "projects:read",
        "projects:write",
        "deployments:read",
        "deployments:write",
        "webhooks:read",
        "usage:read",
    ),
    "viewer": READ_SCOPES,
}
ROLE_NAMES = tuple(ROLES)


def grants(held: list[str] | tuple[str, ...], required: str) -> bool:
    return ALL in held or required in held


def missing(held: list[str] | tuple[str, ...], wanted: list[str] | tuple[str, ...]) -> list[str]:
    """The scopes of `wanted` that `held` does not cover: `*` is covered only by `*`."""
    if ALL in held:
        return []
    return [scope for scope in wanted if scope not in held]
