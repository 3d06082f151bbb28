"""Rate limits (contract section 3) through the HTTP surface, on moto."""

import time

from tests.conftest import Api


def _limited_key(workspace_id: str, scopes: list[str]) -> str:
    from chalicelib.identity.keys import issue

    return issue(name="limited", scopes=scopes, workspace_id=workspace_id)[1]


def test_every_authenticated_response_carries_the_headers(api, anonymous):
    # Given a free workspace's key (60 requests a minute, no burst)
    # When it makes a request that succeeds and one that fails
    before = int(time.time())
    ok = api.get("/v1/projects")
    missing = api.get("/v1/projects/prj_missing")

    # Then both carry the bucket's state
    assert ok.status_code == 200 and missing.status_code == 404
    assert ok.headers["X-RateLimit-Limit"] == "60"
    assert ok.headers["X-RateLimit-Remaining"] == "59"
    assert missing.headers["X-RateLimit-Remaining"] in ("58", "59")  # 59 if a second passed
    assert before + 1 <= int(ok.headers["X-RateLimit-Reset"]) <= before + 3
    assert ok.headers["RateLimit-Policy"] == '"default";q=60;w=60'
    assert ok.headers["RateLimit"] == '"default";r=59;t=1'

    # And an unauthenticated response does not
    refused = anonymous.get("/v1/projects")
    assert refused.status_code == 401
    assert "X-RateLimit-Limit" not in refused.headers


def test_naming_a_workspace_one_cannot_act_in_still_takes_a_token(client, make_workspace):
    from chalicelib import admin
    from tests.integration.conftest import Acting, run_admin

    # Given a partner on the free tier (a token a second), and a workspace not theirs
    created = run_admin(admin.main, "create-partner", "--name", "Prober", "--tier", "free")
    partner = Acting(client, created["api_key"])
    theirs, _ = make_workspace("Someone else's")
    first = partner.get("/v1/workspaces")

    # When it names that workspace, twice
    probes = [partner.acting_in(theirs).get("/v1/projects") for _ in range(2)]

    # Then each is 404, carries the headers of the partner's own bucket and uses a token
    used = [int(first.headers["X-RateLimit-Remaining"])]
    for probe in probes:
        assert probe.status_code == 404
        assert probe.headers["X-RateLimit-Limit"] == first.headers["X-RateLimit-Limit"]
        used.append(int(probe.headers["X-RateLimit-Remaining"]))
    assert used[0] == 59 and used[2] < used[0]  # two taken, at most one back meanwhile


def test_the_tier_sets_capacity_and_window(client, make_workspace):
    starter = Api(client, make_workspace("Starter", tier="starter")[1])
    response = starter.get("/v1/projects")
    # 1,000 a minute with 20% burst: 1,200 tokens, refilled in 72 s
    assert response.headers["X-RateLimit-Limit"] == "1200"
    assert response.headers["X-RateLimit-Remaining"] == "1199"
    assert response.headers["RateLimit-Policy"] == '"default";q=1200;w=72'


def _until_refused(send, refusals: int = 1) -> tuple[list, float]:
    """Send until `refusals` requests were rate limited: the responses and the seconds
    taken. The bucket refills while this runs (a token a second on the free tier), so
    callers allow for a token per second elapsed."""
    responses: list = []
    started = time.monotonic()
    while sum(r.status_code == 429 for r in responses) < refusals:
        responses.append(send())
        assert len(responses) < 500, "never rate limited"
    return responses, time.monotonic() - started


def test_an_empty_bucket_is_429_before_scope_checks_and_refills(client, api):
    # Given a read-only key of a free workspace
    workspace_id = api.post("/v1/projects", {"name": "Site"}).json["data"]["workspace_id"]
    reader = Api(client, _limited_key(workspace_id, ["projects:read"]))

    # When it keeps calling a route its scopes do not allow
    responses, elapsed = _until_refused(lambda: reader.post("/v1/projects", {"name": "Nope"}))

    # Then each call takes a token and is 403, until the bucket is empty: then it is 429
    assert {r.status_code for r in responses[:-1]} == {403}
    assert 60 <= len(responses) - 1 <= 60 + int(elapsed) + 1
    refused = responses[-1]
    assert refused.json["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit"] == '"default";r=0;t=1'
    assert int(refused.headers["X-RateLimit-Reset"]) <= int(time.time()) + 2

    # And another key of the same workspace has its own bucket
    assert api.get("/v1/projects").status_code == 200

    # And a token comes back at the refill rate (one a second on the free tier)
    deadline = time.monotonic() + 5
    while (response := reader.get("/v1/projects")).status_code == 429:
        assert time.monotonic() < deadline, "the bucket did not refill"
        time.sleep(0.1)
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == "0"


def test_rate_limited_calls_are_not_counted_as_usage(client, api):
    workspace_id = api.post("/v1/projects", {"name": "Site"}).json["data"]["workspace_id"]
    other = Api(client, _limited_key(workspace_id, ["projects:read"]))
    responses, _ = _until_refused(lambda: other.get("/v1/projects"), refusals=3)
    admitted = sum(r.status_code == 200 for r in responses)
    assert admitted >= 60

    usage = api.get("/v1/usage").json["data"]["metrics"]["api_calls"]
    # the admitted calls of one key, and the create and this read of the other
    assert usage["used"] == admitted + 2
    assert usage["limit"] is None


def _rate_limit_writes():
    """A live count of the UpdateItems on the rate-limit table."""
    from chalicelib.aws.clients import client

    writes = [0]

    def record(params, **_):
        if params.get("TableName", "").endswith("rate_limits"):
            writes[0] += 1

    client("dynamodb").meta.events.register("before-parameter-build.dynamodb.UpdateItem", record)
    return writes, lambda: client("dynamodb").meta.events.unregister(
        "before-parameter-build.dynamodb.UpdateItem", record
    )


def test_a_busy_key_takes_its_tokens_in_leases_and_every_call_is_counted(client, make_workspace):
    """Past a few requests a second, one write takes a quarter-second's tokens; each answer
    still has its own token's headers, and usage counts every call (and, at most, the
    tokens of the last lease that were not handed out)."""
    key = make_workspace("Busy", tier="enterprise")[1]
    busy = Api(client, key)
    writes, stop_counting = _rate_limit_writes()
    try:
        sent, remaining = 0, []
        until = time.monotonic() + 2.5
        while time.monotonic() < until:
            response = busy.get("/v1/projects")
            assert response.status_code == 200
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
            sent += 1
    finally:
        stop_counting()
    assert sent >= 40, "too slow a machine to show leases"
    assert writes[0] < sent / 2, (writes[0], sent)
    capacity = int(response.headers["X-RateLimit-Limit"])
    assert all(0 < r < capacity for r in remaining)
    used = busy.get("/v1/usage").json["data"]["metrics"]["api_calls"]["used"]
    assert sent + 1 <= used <= sent + 1 + capacity // 100


def test_leases_never_admit_more_than_the_bucket_holds(server_aws):
    """A bucket of 5,000 drained by a busy process: the leases shrink to single tokens as
    it empties, and what was admitted is what the bucket held plus its refill. The first
    second is taken a write per token (no pace yet, however quick the machine); leases of
    up to 1% of the bucket take the rest."""
    from chalicelib.core.errors import RateLimited
    from chalicelib.identity import ratelimit
    from chalicelib.identity.principal import Principal

    # One token per 12 ms: the last tokens, taken a write each, must outrun the refill.
    rules = ratelimit.Policy(per_minute=5_000, burst=0.0)
    principal = Principal("api_key", "key_drain", (), "ws_drain", "enterprise")
    writes, stop_counting = _rate_limit_writes()
    admitted, refused, started = 0, 0, time.monotonic()
    try:
        while refused < 3:
            try:
                ratelimit.check(principal, rules)
                admitted += 1
            except RateLimited as refusal:
                refused += 1
                assert int(refusal.headers["Retry-After"]) >= 1
            assert time.monotonic() - started < 60, "never refused"
    finally:
        stop_counting()
    refill = int((time.monotonic() - started) * rules.capacity / 60) + 1
    assert rules.capacity - rules.capacity // 100 <= admitted <= rules.capacity + refill
    assert writes[0] < admitted / 3, (writes[0], admitted)


def test_concurrent_requests_wait_for_the_lease_under_way_instead_of_writing_alone(server_aws):
    """Twenty threads on one busy key: a request that comes while another is taking a lease
    takes its token from that lease, so the writes stay a few a second, not one per
    request; and every request is admitted, with headers of a token of the bucket."""
    from chalicelib.identity import ratelimit
    from chalicelib.identity.principal import Principal

    rules = ratelimit.Policy(per_minute=600_000, burst=0.0)
    principal = Principal("api_key", "key_crowd", (), "ws_crowd", "enterprise")
    writes, stop_counting = _rate_limit_writes()
    warm_until = time.monotonic() + 1.2  # a second of pace first: leases are sized by it
    until = warm_until + 2.5

    def client(answers: list) -> None:
        while time.monotonic() < until:
            answers.append(ratelimit.check(principal, rules))

    try:
        crowd = _Crowd(20, client)
        while time.monotonic() < warm_until:
            time.sleep(0.01)
        written, counted = writes[0], len(crowd.answers)
        crowd.join()
    finally:
        stop_counting()
    sent = len(crowd.answers) - counted
    assert sent >= 100, "too slow a machine to show leases"
    assert writes[0] - written < sent / 5, (writes[0] - written, sent)
    assert all(0 < int(h["X-RateLimit-Remaining"]) < rules.capacity for h in crowd.answers), (
        "a token outside the bucket"
    )


def test_concurrent_requests_on_a_draining_bucket_admit_what_it_holds(server_aws):
    """Ten threads drain a bucket of 1,000: as it empties, a lease no longer fits and the
    requests waiting for one take single tokens; what was admitted is what the bucket held
    plus its refill, and every thread ends on a refusal, not an error."""
    from chalicelib.core.errors import RateLimited
    from chalicelib.identity import ratelimit
    from chalicelib.identity.principal import Principal

    rules = ratelimit.Policy(per_minute=1000, burst=0.0)  # 1,000 tokens, one per 60 ms
    principal = Principal("api_key", "key_drained", (), "ws_drained", "enterprise")
    started = time.monotonic()

    def client(answers: list) -> None:
        while time.monotonic() - started < 60:
            try:
                answers.append(ratelimit.check(principal, rules))
            except RateLimited:
                return
        raise AssertionError("never refused")

    crowd = _Crowd(10, client)
    crowd.join()
    refill = int((time.monotonic() - started) * 1000 / 60) + 1
    assert 1000 - rules.capacity // 100 <= len(crowd.answers) <= 1000 + refill


class _Crowd:
    """`size` threads running client(answers) at once; join() re-raises what one raised."""

    def __init__(self, size: int, client) -> None:
        import threading

        self.answers: list = []
        self.failures: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, args=(client,)) for _ in range(size)]
        for thread in self.threads:
            thread.start()

    def _run(self, client) -> None:
        try:
            client(self.answers)
        except BaseException as failure:  # reported by join()
            self.failures.append(failure)

    def join(self) -> None:
        for thread in self.threads:
            thread.join()
        assert not self.failures, self.failures
