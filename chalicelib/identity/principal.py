"""Who is calling: the result of authentication that every route receives."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.core import scopes as scope_rules
from chalicelib.core.errors import Forbidden


@dataclass(frozen=True)
class Principal:
    kind: str  # "workspace_key" | "partner_key" | "user"
    id: str  # the key id, partner id or "user:<sub>": what rate limits and idempotency key on
    scopes: tuple[str, ...]
    workspace_id: str | None = None  # None: a partner or user that named no workspace
    tier: str = "free"
    partner_id: str | None = None
    key_id: str | None = None
    user_id: str | None = None  # the JWT's `sub`
    role: str | None = None  # the user's role in `workspace_id`

    def grants(self, scope: str) -> bool:
        return scope_rules.grants(self.scopes, scope)

    def require(self, scope: str) -> None:
        if not self.grants(scope):
            raise Forbidden(scope)

    def missing_scopes(self, wanted: list[str] | tuple[str, ...]) -> list[str]:
        """Scopes this principal could not hand on to a key it creates or rotates."""
        return scope_rules.missing(self.scopes, wanted)
