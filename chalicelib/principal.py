"""Who is calling: the result of authentication that every route receives."""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib import scopes as scope_rules


@dataclass(frozen=True)
class Principal:
    kind: str  # "workspace_key" | "partner_key" | "user"
    id: str  # the key id, partner id or user subject: what rate limits and idempotency key on
    scopes: tuple[str, ...]
    workspace_id: str | None = None
    tier: str = "free"
    partner_id: str | None = None
    key_id: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def grants(self, scope: str) -> bool:
        return scope_rules.grants(self.scopes, scope)
