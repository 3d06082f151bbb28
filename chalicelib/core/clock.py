"""Time in the contract's format: RFC 3339, UTC, seconds precision, `Z` suffix."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return rfc3339(utcnow())


def parse_rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def precise(moment: datetime | None = None) -> str:
    """RFC 3339 with milliseconds, fixed width so that strings sort as times: for internal
    timestamps that timeouts are measured against (a deployment's `status_at`)."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
