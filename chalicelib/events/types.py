"""The event types of the contract and the filters that select them (`*`, `prefix.*`)."""

from __future__ import annotations

EVENT_TYPES = (
    "project.created",
    "project.deleted",
    "deployment.created",
    "build.started",
    "build.completed",
    "build.failed",
    "deploy.completed",
    "deploy.failed",
    "deployment.canceled",
    "deployment.crashed",
    "api_key.created",
    "api_key.revoked",
    "webhook.test",
)
PREFIXES = tuple(sorted({kind.split(".")[0] for kind in EVENT_TYPES}))
# What an endpoint may subscribe to: an exact type, `*`, or `prefix.*` for a prefix some
# type has.
FILTERS = ("*", *(f"{prefix}.*" for prefix in PREFIXES), *EVENT_TYPES)


def matches(selectors: list[str], event_type: str) -> bool:
    for selector in selectors:
        if selector in ("*", event_type):
            return True
        if selector.endswith(".*") and event_type.startswith(selector[:-1]):
            return True
    return False
