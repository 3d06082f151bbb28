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
