"""Rate limits: a token bucket per principal, refilled at the tier's per-minute limit and
holding that limit x (1 + burst) tokens (contract section 3).

The bucket is kept as GCRA's "theoretical arrival time" (tat): the moment the bucket would
be full again. Taking a token moves tat one interval (60 s / limit) later, starting from now
if it was in the past; a request is admitted while tat stays within capacity intervals of
now. That one number makes every request a single conditional UpdateItem
(store/rate_limits.py), and the usual case, a bucket that is not full, is `tat = tat +
interval`, which concurrent requests can all apply without conflicting.

Each process remembers the last tat it saw per bucket. tat never moves back, so that value
is a lower bound: it picks the form of the write, and a bucket it already shows as empty is
refused without any I/O.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from chalicelib.core.errors import RateLimited
from chalicelib.core.tiers import TIERS
from chalicelib.identity.auth import TTLCache
from chalicelib.identity.principal import Principal
from chalicelib.store import rate_limits as store

MICROS = 1_000_000
_ATTEMPTS = 3
_known = TTLCache(max_entries=10_000)


@dataclass(frozen=True)
class Policy:
    per_minute: int
    burst: float

    @property
    def capacity(self) -> int:
        return round(self.per_minute * (1 + self.burst))

    @property
    def interval(self) -> int:
        """Microseconds for one token to come back."""
        return math.ceil(60 * MICROS / self.per_minute)

    @property
    def refill_seconds(self) -> int:
        """Seconds an empty bucket takes to fill: the policy's window."""
        return math.ceil(self.capacity * self.interval / MICROS)


def policy(tier: str) -> Policy:
    plan = TIERS[tier]
    return Policy(plan.requests_per_minute, plan.burst)


def bucket_key(principal: Principal) -> tuple[str, str]:
    """(partition, principal): a partner or a user has a bucket in each workspace it acts
    in, under that workspace's tier; outside any workspace, a bucket of its own."""
    return principal.workspace_id or f"principal#{principal.id}", principal.id


def calls_attribute(moment: float) -> str:
    return "calls#" + time.strftime("%Y-%m", time.gmtime(moment))


# Every authenticated answer carries these (contract section 3).
HEADER_NAMES = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "RateLimit-Policy",
    "RateLimit",
)


def check(principal: Principal, rules: Policy | None = None) -> dict[str, str]:
    """Take a token for this request; return the rate-limit headers of its response,
    or raise RateLimited (which carries them too). `rules`: a policy other than the
    tier's (a deploy hook's own)."""
    rules = rules or policy(principal.tier)
    now = time.time_ns() // 1000
    latest = now + (rules.capacity - 1) * rules.interval
    partition, principal_id = bucket_key(principal)
    cache_key = f"{partition}\n{principal_id}"
    known = _known.get(cache_key, ttl=rules.refill_seconds)
    if known is not None and known > latest:
        raise _refusal(rules, now, latest, known)
    full = known is None or known < now
    for _ in range(_ATTEMPTS):
        outcome = store.take(
            partition,
            principal_id,
            full=full,
            now=now,
            interval=rules.interval,
            latest=latest,
            calls_attribute=calls_attribute(now / MICROS),
        )
        if outcome.tat is not None:
            _known.put(cache_key, outcome.tat)
        if outcome.taken:
            assert outcome.tat is not None
            return _headers(rules, now, outcome.tat)
        if outcome.tat is not None and outcome.tat > latest:
            raise _refusal(rules, now, latest, outcome.tat)
        full = outcome.tat is None or outcome.tat < now
    # Only a bucket refilled and drained by other requests between each of our attempts
    # gets here; asking the client to come back in a second is the safe answer.
    raise _refusal(rules, now, now, now + MICROS)


def _headers(rules: Policy, now: int, tat: int) -> dict[str, str]:
    remaining = max(
        0, min(rules.capacity, (now + rules.capacity * rules.interval - tat) // rules.interval)
    )
    until_full = max(0, math.ceil((tat - now) / MICROS))
    return _header_set(rules, remaining, math.ceil(tat / MICROS), until_full)


def _header_set(rules: Policy, remaining: int, reset_at: int, reset_in: int) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(rules.capacity),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset_at),
        "RateLimit-Policy": f'"default";q={rules.capacity};w={rules.refill_seconds}',
        "RateLimit": f'"default";r={remaining};t={reset_in}',
    }


def _refusal(rules: Policy, now: int, latest: int, tat: int) -> RateLimited:
    retry_after = max(1, math.ceil((tat - latest) / MICROS))
    headers = _header_set(rules, 0, math.ceil(now / MICROS) + retry_after, retry_after)
    return RateLimited(
        f"Rate limit of {rules.per_minute} requests per minute exceeded; retry in {retry_after} s",
        headers={**headers, "Retry-After": str(retry_after)},
    )
