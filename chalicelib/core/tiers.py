"""The plans of the contract's section 3. `None` is unlimited."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    name: str
    requests_per_minute: int
    burst: float
    projects: int | None
    api_keys: int
    concurrent_builds: int
    deployments_per_day: int | None
    build_minutes_per_month: int | None


TIERS = {
    t.name: t
    for t in (
        Tier("free", 60, 0.0, 3, 5, 1, 20, 100),
        Tier("starter", 1_000, 0.2, 10, 5, 2, 100, 500),
        Tier("pro", 5_000, 0.3, 50, 5, 4, 500, 3_000),
        Tier("agency", 20_000, 0.5, 200, 5, 8, 2_000, 10_000),
        Tier("enterprise", 100_000, 1.0, None, 5, 16, None, None),
    )
}
TIER_NAMES = tuple(TIERS)
