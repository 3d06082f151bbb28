"""Scopes, and the check that a principal holds one."""

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


def grants(held: list[str] | tuple[str, ...], required: str) -> bool:
    return ALL in held or required in held
