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

A busy process leases tokens. Where a bucket holds at least LEASE_FROM tokens (starter and
up) and this process takes more than a few of its tokens a second, one write takes a
quarter-second's worth, or a token for each request waiting for it if that is more (at
most 1% of the bucket), and the process hands them out to the requests that follow, for up
to LEASE_S. Requests that come while that write is under way wait for it (up to
LEASE_WAIT_S) and take from its lease, so fifty concurrent clients cost no more writes than
one busy one. Each request's headers are those of its own token, as if it had written
alone. The lease's tokens are counted as API calls when taken; the ones that were never
handed out (the lease ran out of time) are taken back from the count at the process's next
write, and leave the bucket as spent. So at most a quarter-second of a
busy client's requests per process is charged to the bucket without being made, and a
quiet bucket (or one under LEASE_FROM, like the free tier's 60) still costs one write per
request, exactly as above. On AWS, where each write is a write capacity unit, a client at
100 requests a second costs about 4 writes a second instead of 100.
"""

from __future__ import annotations

import math
import threading
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
LEASE_FROM = 1_000  # tokens a bucket holds before a busy process may lease them
LEASE_S = 1.0  # how long a lease's tokens may be handed out
LEASE_SHARE = 0.25  # a lease: this many seconds' worth of the process's recent rate
LEASE_WAIT_S = 1.0  # how long a request waits for a lease being taken before writing alone
_MAX_LEASES = 10_000


@dataclass
class _Lease:
    tat: int  # the bucket's tat once the lease was taken
    left: int  # tokens of it not handed out yet
    until: float  # monotonic time after which they are not
    second: int = 0  # the monotonic second `taken` counts
    taken: int = 0  # tokens this process took from the bucket in it
    pace: int = 0  # tokens taken in the whole second before it
    unspent: int = 0  # tokens that ran out of time, to take back from the call count
    writing: bool = False  # a thread is taking a lease now
    waiting: int = 0  # requests waiting for that lease
    short: bool = False  # this second, the bucket held less than a lease: no waiting


_leases: dict[str, _Lease] = {}
_leases_lock = threading.Lock()
_lease_settled = threading.Condition(_leases_lock)  # a lease's write is over


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
    partition, principal_id = bucket_key(principal)
    cache_key = f"{partition}\n{principal_id}"
    wanted, uncounted, writer = 1, 0, False
    if rules.capacity >= LEASE_FROM:
        handed = _from_lease(cache_key, rules, now)
        if isinstance(handed, dict):
            return handed
        wanted, uncounted, writer = handed
    leased: tuple[int, int] | None = None  # (tat, tokens) of a lease taken here
    try:
        latest = now + (rules.capacity - wanted) * rules.interval
        latest_alone = now + (rules.capacity - 1) * rules.interval  # for one token
        known = _known.get(cache_key, ttl=rules.refill_seconds)
        if known is not None and known > latest_alone:
            raise _refusal(rules, now, latest_alone, known)
        if wanted > 1 and known is not None and known > latest:
            wanted, latest = 1, latest_alone  # fewer tokens left than a lease
            _lease_short(cache_key)
        full = known is None or known < now
        for _ in range(_ATTEMPTS):
            # Tokens a past lease counted but never handed out come off this write's
            # count, as far as it counts more than this request.
            correction = min(uncounted, wanted - 1)
            outcome = store.take(
                partition,
                principal_id,
                full=full,
                now=now,
                interval=rules.interval,
                latest=latest,
                calls_attribute=calls_attribute(now / MICROS),
                tokens=wanted,
                calls=wanted - correction,
            )
            if outcome.tat is not None:
                _known.put(cache_key, outcome.tat)
            if outcome.taken:
                assert outcome.tat is not None
                uncounted -= correction
                if wanted > 1:
                    leased = (outcome.tat, wanted - 1)
                return _headers(rules, now, outcome.tat - (wanted - 1) * rules.interval)
            if wanted > 1:
                # Fewer tokens left than a lease: take this request's alone.
                wanted, latest = 1, latest_alone
                _lease_short(cache_key)
            elif outcome.tat is not None and outcome.tat > latest:
                raise _refusal(rules, now, latest, outcome.tat)
            full = outcome.tat is None or outcome.tat < now
        # Only a bucket refilled and drained by other requests between each of our attempts
        # gets here; asking the client to come back in a second is the safe answer.
        raise _refusal(rules, now, now, now + MICROS)
    finally:
        if writer:
            _settle_lease(cache_key, leased, uncounted)


def _from_lease(key: str, rules: Policy, now: int) -> dict[str, str] | tuple[int, int, bool]:
    """This request's token from the process's lease on the bucket (its headers), or how
    many tokens the write it must make should take (one when the lease another thread is
    taking does not come within LEASE_WAIT_S), the calls counted for tokens that were never
    handed out, and whether this request is the one taking the lease."""
    moment = time.monotonic()
    second = int(moment)
    with _leases_lock:
        lease = _leases.get(key)
        if lease is None:
            if len(_leases) >= _MAX_LEASES:
                _leases.clear()
            lease = _leases[key] = _Lease(tat=0, left=0, until=0.0, second=second)
        if lease.second != second:
            lease.pace = lease.taken if lease.second == second - 1 else 0
            lease.second, lease.taken, lease.short = second, 0, False
        lease.taken += 1
        while True:
            if lease.left > 0 and time.monotonic() < lease.until:
                lease.left -= 1
                # Its token, as if taken now: a bucket that refilled since shows it alone.
                tat = max(lease.tat - lease.left * rules.interval, now + rules.interval)
                return _headers(rules, now, tat)
            if not lease.writing:
                break
            # Another thread is taking a lease: wait for it rather than write alone (the
            # next lease is sized for the requests waiting, if this one runs out).
            waited = moment + LEASE_WAIT_S - time.monotonic()
            if waited <= 0 or lease.short or _leases.get(key) is not lease:
                return 1, 0, False
            lease.waiting += 1
            try:
                _lease_settled.wait(waited)
            finally:
                lease.waiting -= 1
        lease.unspent += lease.left
        lease.left = 0
        wanted = 1
        if not lease.short:
            share = max(int(lease.pace * LEASE_SHARE), lease.waiting + 1)
            wanted = max(1, min(share, rules.capacity // 100))
        lease.writing = True
        uncounted, lease.unspent = lease.unspent, 0
        return wanted, uncounted, True


def _lease_short(key: str) -> None:
    """The bucket holds less than a lease: the requests waiting for this one write alone
    now, and no other is tried this second."""
    with _leases_lock:
        lease = _leases.get(key)
        if lease is not None:
            lease.short = True
        _lease_settled.notify_all()


def _settle_lease(key: str, leased: tuple[int, int] | None, uncounted: int) -> None:
    """After the write of the request taking a lease (whatever became of it): keep the
    lease, and the count it could not correct yet."""
    with _leases_lock:
        _lease_settled.notify_all()
        lease = _leases.get(key)
        if lease is None:
            return
        lease.unspent += uncounted
        lease.writing = False
        if leased is not None:
            lease.tat, lease.left = leased
            lease.until = time.monotonic() + LEASE_S


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
