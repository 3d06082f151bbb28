"""Idempotency (contract section 4) through the HTTP surface, on moto."""

import time

import pytest

from tests.conftest import Api


def _key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def test_a_repeat_replays_the_first_response_and_does_nothing_twice(api):
    # Given a project created with a key
    first = api.post("/v1/projects", {"name": "Shop"}, headers=_key("create-shop"))
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers

    # When the same request is sent again, with the JSON written differently
    again = api.post("/v1/projects", '{ "name" :  "Shop" }', headers=_key("create-shop"))

    # Then the first response comes back, marked, and there is still one project
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Content-Type"] == "application/json"
    assert again.json == first.json
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    assert "X-RateLimit-Remaining" in again.headers
    assert [p["id"] for p in api.get("/v1/projects").json["data"]] == [first.json["data"]["id"]]


def _everything_stored() -> str:
    """Every item of every table, as text (a test may scan; the app never does)."""
    from chalicelib.aws.clients import client

    ddb = client("dynamodb")
    return "".join(
        str(ddb.scan(TableName=name)["Items"]) for name in ddb.list_tables()["TableNames"]
    )


def test_a_replayed_key_creation_gives_the_key_again_but_stores_it_only_encrypted(api):
    # Given a key created, and one rotated, each with an Idempotency-Key
    created = api.post("/v1/api-keys", {"name": "ci", "scopes": ["*"]}, headers=_key("new-ci-key"))
    assert created.status_code == 201
    rotated = api.post(
        f"/v1/api-keys/{created.json['data']['id']}/rotate", {}, headers=_key("rotate-ci-key")
    )
    assert rotated.status_code == 201

    # Then no table holds either key: keys are stored only as their SHA-256
    stored = _everything_stored()
    for response in (created, rotated):
        assert response.json["data"]["key"] not in stored

    # And a retry of either still gets its first answer, key included
    again = api.post("/v1/api-keys", {"name": "ci", "scopes": ["*"]}, headers=_key("new-ci-key"))
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == created.json
    rotated_again = api.post(
        f"/v1/api-keys/{created.json['data']['id']}/rotate", {}, headers=_key("rotate-ci-key")
    )
    assert rotated_again.json == rotated.json
    assert len(api.get("/v1/api-keys").json["data"]) == 3


def test_a_key_reused_for_another_request_is_422(api):
    project = api.post("/v1/projects", {"name": "Shop"}, headers=_key("k1")).json["data"]
    path = f"/v1/projects/{project['id']}"
    for method, target, body in (
        ("POST", "/v1/projects", {"name": "Other"}),
        ("PATCH", path, {"name": "Shop"}),
        ("DELETE", path, None),
    ):
        response = api.request(method, target, body, headers=_key("k1"))
        assert response.status_code == 422, method
        assert response.json["error"]["code"] == "idempotency_key_reused"
    assert api.get(path).status_code == 200
    assert len(api.get("/v1/projects").json["data"]) == 1


def test_client_errors_are_replayed_but_retryable_ones_are_not(api):
    # A 409 is the request's answer: it is stored and replayed, even once the slug is free
    taken = api.post("/v1/projects", {"name": "Web"})
    conflict = api.post("/v1/projects", {"name": "Web"}, headers=_key("web-again"))
    assert conflict.status_code == 409
    api.delete(f"/v1/projects/{taken.json['data']['id']}")
    replay = api.post("/v1/projects", {"name": "Web"}, headers=_key("web-again"))
    assert replay.status_code == 409
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json["error"] == conflict.json["error"]

    # A 422 is not stored: the key can be used again once the body is fixed
    invalid = api.post("/v1/projects", {"name": ""}, headers=_key("fix-me"))
    assert invalid.status_code == 422
    fixed = api.post("/v1/projects", {"name": "Fixed"}, headers=_key("fix-me"))
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers


def test_an_unauthenticated_request_does_not_use_the_key(api, anonymous):
    broken = api.key[:-1] + ("A" if api.key[-1] != "A" else "B")
    refused = anonymous.post(
        "/v1/projects",
        {"name": "Shop"},
        headers={"Authorization": f"Bearer {broken}", **_key("first-try")},
    )
    assert refused.status_code == 401
    created = api.post("/v1/projects", {"name": "Shop"}, headers=_key("first-try"))
    assert created.status_code == 201 and "Idempotent-Replayed" not in created.headers


def test_a_server_error_leaves_the_key_retryable(api, monkeypatch):
    from chalicelib.projects import service as projects

    real_create = projects.create

    def fail_once(*args, **kwargs):
        monkeypatch.setattr(projects, "create", real_create)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(projects, "create", fail_once)
    failed = api.post("/v1/projects", {"name": "Shop"}, headers=_key("retry-me"))
    assert failed.status_code == 500
    retried = api.post("/v1/projects", {"name": "Shop"}, headers=_key("retry-me"))
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers


def test_delete_and_patch_are_idempotent(api):
    project = api.post("/v1/projects", {"name": "Shop"}).json["data"]
    path = f"/v1/projects/{project['id']}"
    patched = api.patch(path, {"description": "v1"}, headers=_key("patch-1"))
    api.patch(path, {"description": "v2"})
    replay = api.patch(path, {"description": "v1"}, headers=_key("patch-1"))
    assert replay.json == patched.json and replay.headers["Idempotent-Replayed"] == "true"
    assert api.get(path).json["data"]["description"] == "v2"

    assert api.delete(path, headers=_key("delete-1")).status_code == 204
    again = api.delete(path, headers=_key("delete-1"))
    assert again.status_code == 204 and again.headers["Idempotent-Replayed"] == "true"
    assert api.delete(path).status_code == 404


def test_keys_are_scoped_to_the_principal(api, client, make_workspace):
    other = Api(client, make_workspace("Other")[1])
    mine = api.post("/v1/projects", {"name": "Shop"}, headers=_key("same"))
    theirs = other.post("/v1/projects", {"name": "Shop"}, headers=_key("same"))
    assert mine.status_code == theirs.status_code == 201
    assert mine.json["data"]["id"] != theirs.json["data"]["id"]
    assert "Idempotent-Replayed" not in theirs.headers


@pytest.mark.parametrize(
    "bad",
    ["x" * 256, "tab\there", "new\nline", "nul\x00", "del\x7f", "caf\u00e9", ""],
    ids=["256-chars", "tab", "newline", "nul", "del", "non-ascii", "empty"],
)
def test_malformed_keys_are_400_and_do_nothing(api, bad):
    response = api.post("/v1/projects", {"name": "Shop"}, headers=_key(bad))
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"
    assert response.json["error"]["details"] == {"header": "Idempotency-Key"}
    assert api.get("/v1/projects").json["data"] == []


def test_the_longest_printable_key_is_accepted(api):
    assert api.post("/v1/projects", {"name": "B"}, headers=_key(" x")).status_code == 400
    # Every printable character, the space inside (at either end HTTP would strip it).
    key = "!" + "".join(chr(32 + i % 95) for i in range(253)) + "~"
    assert api.post("/v1/projects", {"name": "A"}, headers=_key(key)).status_code == 201
    assert api.post("/v1/projects", {"name": "A"}, headers=_key(key)).status_code == 201
    assert len(api.get("/v1/projects").json["data"]) == 1


def test_a_crashed_request_blocks_its_key_until_its_lease_ends(api, monkeypatch):
    from chalicelib.projects import service as projects

    # Given a lease of a few seconds (long enough for the checks below on a loaded
    # machine), and a request whose process dies mid-way
    monkeypatch.setenv("SHIPYARD_IDEMPOTENCY_LEASE_S", "4")
    from chalicelib.core.settings import get_settings

    get_settings.cache_clear()
    real_create = projects.create

    class ProcessDied(BaseException):
        """Stands for the Lambda being killed: nothing in the app catches it."""

    def die(*args, **kwargs):
        raise ProcessDied

    monkeypatch.setattr(projects, "create", die)
    with pytest.raises(ProcessDied):
        api.post("/v1/projects", {"name": "Shop"}, headers=_key("crash"))
    monkeypatch.setattr(projects, "create", real_create)

    # When it is retried at once, the key is still held
    busy = api.post("/v1/projects", {"name": "Shop"}, headers=_key("crash"))
    assert busy.status_code == 409
    assert busy.json["error"]["code"] == "idempotency_key_in_use"
    assert busy.headers["Retry-After"] == "1"
    # and another body cannot take it over
    other = api.post("/v1/projects", {"name": "Other"}, headers=_key("crash"))
    assert other.json["error"]["code"] == "idempotency_key_reused"

    # Then once the lease has run out, the retry goes through, once
    deadline = time.monotonic() + 15
    while (
        retry := api.post("/v1/projects", {"name": "Shop"}, headers=_key("crash"))
    ).status_code == 409:
        assert time.monotonic() < deadline, "the lease never ran out"
        time.sleep(0.2)
    assert retry.status_code == 201
    assert len(api.get("/v1/projects").json["data"]) == 1


def test_the_key_is_ignored_on_get(api):
    for _ in range(2):
        response = api.get("/v1/projects", headers=_key("x" * 300))
        assert response.status_code == 200
        assert "Idempotent-Replayed" not in response.headers
