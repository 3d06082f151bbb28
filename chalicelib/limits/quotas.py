"""Quotas of the contract's section 3, and the usage they are measured by.

- Count limits (projects, active API keys) are 403 `feature_limit_reached`. The project
  count is a counter written in the same transaction as the project, so no interleaving of
  creates can pass the limit.
- Per-period limits are 429 `quota_exceeded`, with `Retry-After` until the period ends:
  deployments per UTC day (`reserve_deployment`, one conditional write) and build minutes
  per UTC calendar month (`record_build_seconds` after a build, `check_build_minutes`
  before one).
- API calls are counted per UTC month on the rate-limit buckets (identity/ratelimit.py).

`None` limits (enterprise) are unlimited: counted, never refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core.clock import rfc3339, utcnow
from chalicelib.core.errors import FeatureLimitReached, QuotaExceeded
from chalicelib.core.models import Entitlement, Usage, UsageMetric, UsagePeriod
from chalicelib.core.tiers import TIERS
from chalicelib.identity import keys, ratelimit
from chalicelib.store import rate_limits as bucket_store
from chalicelib.store import usage as store

PROJECTS = "projects"
FEATURES = ("api_calls", "deployments", "build_minutes", "projects", "api_keys")
COUNT_LIMITED = ("projects", "api_keys")
_PERIOD_KEEP = timedelta(days=40)  # period counters outlive their period this long (TTL)


def _month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(moment: datetime) -> datetime:
    return _month_start(_month_start(moment) + timedelta(days=32))


def _next_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def _deployments_metric(moment: datetime) -> str:
    return "deployments#" + moment.strftime("%Y-%m-%d")


def _build_metric(moment: datetime) -> str:
    return "build_seconds#" + moment.strftime("%Y-%m")


def _seconds_until(end: datetime, now: datetime) -> int:
    return max(1, math.ceil((end - now).total_seconds()))


def _expiry(end: datetime) -> int:
    return int((end + _PERIOD_KEEP).timestamp())


@contextmanager
def project_slot(workspace_id: str, tier: str) -> Iterator[list[dict[str, Any]]]:
    """The transaction operations that count one more project against the tier's limit,
    for the project's own transaction; the limit refusing them is `feature_limit_reached`."""
    limit = TIERS[tier].projects
    try:
        yield [store.claim_op(workspace_id, PROJECTS, limit)]
    except Exception as error:
        used = store.failed_claim(error, workspace_id, PROJECTS)
        if used is None or limit is None:
            raise
        raise FeatureLimitReached(PROJECTS, limit, used) from None


def project_release(workspace_id: str) -> list[dict[str, Any]]:
    """The transaction operations that give a deleted project's slot back."""
    return [store.release_op(workspace_id, PROJECTS)]


def reserve_deployment(workspace_id: str, tier: str) -> None:
    """Count one deployment against today's quota (UTC), atomically; raise QuotaExceeded
    (429) if the day's deployments are used up. Call it as the last check before the
    deployment is recorded: a reservation is not given back."""
    now = datetime.now(UTC)
    limit = TIERS[tier].deployments_per_day
    done, used = store.increment(
        workspace_id, _deployments_metric(now), limit, _expiry(_next_day(now))
    )
    if not done:
        assert limit is not None
        raise QuotaExceeded("deployments", limit, used, _seconds_until(_next_day(now), now))


def record_build_seconds(workspace_id: str, seconds: float) -> None:
    """Add the duration of a finished (or failed, or stopped) build to this month's build
    minutes. Builds are never cut short by the quota; the next one is refused."""
    if seconds <= 0:
        return
    now = datetime.now(UTC)
    store.add(workspace_id, _build_metric(now), round(seconds, 3), _expiry(_next_month(now)))


def check_build_minutes(workspace_id: str, tier: str) -> None:
    """Raise QuotaExceeded (429) if this month's build minutes are used up."""
    limit = TIERS[tier].build_minutes_per_month
    if limit is None:
        return
    now = datetime.now(UTC)
    metric = _build_metric(now)
    minutes = store.counts(workspace_id, [metric])[metric] / 60
    if minutes >= limit:
        retry_after = _seconds_until(_next_month(now), now)
        raise QuotaExceeded("build_minutes", limit, round(minutes, 2), retry_after)


def _used(workspace_id: str, now: datetime, features: tuple[str, ...]) -> dict[str, float]:
    """Current usage of `features`, the quota counters read in one request."""
    metrics = {
        "deployments": _deployments_metric(now),
        "build_minutes": _build_metric(now),
        "projects": PROJECTS,
    }
    wanted = [metrics[feature] for feature in features if feature in metrics]
    counters = store.counts(workspace_id, wanted) if wanted else {}
    used: dict[str, float] = {}
    for feature in features:
        if feature == "api_calls":
            attribute = ratelimit.calls_attribute(now.timestamp())
            used[feature] = bucket_store.calls(workspace_id, attribute)
        elif feature == "api_keys":
            # The counter the limit itself checks, so usage and refusals always agree.
            used[feature] = keys.active_count(workspace_id)
        elif feature == "build_minutes":
            used[feature] = round(counters[metrics[feature]] / 60, 2)
        else:
            used[feature] = counters[metrics[feature]]
    return used


def _limit(tier: str, feature: str) -> int | None:
    plan = TIERS[tier]
    return {
        "api_calls": None,
        "deployments": plan.deployments_per_day,
        "build_minutes": plan.build_minutes_per_month,
        "projects": plan.projects,
        "api_keys": plan.api_keys,
    }[feature]


def _reset_at(feature: str, now: datetime) -> str | None:
    if feature in COUNT_LIMITED:
        return None
    return rfc3339(_next_day(now) if feature == "deployments" else _next_month(now))


def _metric(used: float, limit: int | None, reset_at: str | None) -> UsageMetric:
    if limit is None:
        return UsageMetric(
            used=used, limit=None, available=None, percentage=None, reset_at=reset_at
        )
    return UsageMetric(
        used=used,
        limit=limit,
        available=max(0, round(limit - used, 2)),
        percentage=round(100 * used / limit, 1),
        reset_at=reset_at,
    )


def usage(workspace_id: str, tier: str) -> Usage:
    """Every metric of the current period (the UTC calendar month; deployments count
    per UTC day within it)."""
    now = utcnow()
    used = _used(workspace_id, now, FEATURES)
    metrics = {
        feature: _metric(used[feature], _limit(tier, feature), _reset_at(feature, now))
        for feature in FEATURES
    }
    return Usage(
        workspace_id=workspace_id,
        tier=tier,
        period=UsagePeriod(start=rfc3339(_month_start(now)), end=rfc3339(_next_month(now))),
        metrics=metrics,
    )


def check_entitlement(workspace_id: str, tier: str, feature: str, quantity: int) -> Entitlement:
    """Whether `quantity` more of `feature` would be allowed now, without using any."""
    now = utcnow()
    used = _used(workspace_id, now, (feature,))[feature]
    limit = _limit(tier, feature)
    allowed = limit is None or used + quantity <= limit
    reason = None
    if not allowed:
        reason = "feature_limit_reached" if feature in COUNT_LIMITED else "quota_exceeded"
    return Entitlement(
        allowed=allowed,
        feature=feature,
        current_usage=used,
        limit=limit,
        available=None if limit is None else max(0, round(limit - used, 2)),
        reason=reason,
    )
