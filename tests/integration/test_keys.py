"""The API key lifecycle through HTTP: create (shown once), list, get, rotate, revoke,
expiry, the active-key limit, scopes, last_used_at and the cost of a cached request."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from chalicelib.core.clock import rfc3339, utcnow
from tests.conftest import Api


def create_key(api, scopes=("*",), name="CI", **extra):
    response = api.post("/v1/api-keys", {"name": name, "scopes": list(scopes), **extra})
    assert response.status_code == 201, response.json
    return response.json["data"]


def refused(response, code="unauthorized", status=401):
    return response.status_code == status and response.json["error"]["code"] == code


def test_key_is_shown_once_and_lists_show_prefix_and_last_use(api, client):
    # Given a new key
    created = create_key(api, ["projects:read"], name="Deploy bot")
    assert created["key"].startswith("sk_live_")
    assert created["key"].startswith(created["prefix"])
    assert created["id"].startswith("key_")
    assert created["scopes"] == ["projects:read"]
    assert created["last_used_at"] is None

    # When it is used, then read back
    assert Api(client, created["key"]).get("/v1/projects").status_code == 200
    fetched = api.get(f"/v1/api-keys/{created['id']}").json["data"]
    listed = api.get("/v1/api-keys").json

    # Then the key itself is never shown again
    assert "key" not in fetched
    assert fetched["prefix"] == created["prefix"]
    assert fetched["last_used_at"] is not None
    assert listed["data"][0]["id"] == created["id"]
    assert len(listed["data"]) == 2
    assert all("key" not in k for k in listed["data"])
    assert created["key"] not in api.get("/v1/api-keys").body.decode()
    assert set(fetched) == {
        "id",
        "name",
        "prefix",
        "scopes",
        "expires_at",
        "last_used_at",
        "created_at",
    }


def test_key_list_paginates(api):
    ids = [create_key(api, name=f"k{i}")["id"] for i in range(3)]
    first = api.get("/v1/api-keys?limit=2").json
    assert [k["id"] for k in first["data"]] == ids[::-1][:2]
    cursor = first["pagination"]["next_cursor"]
    second = api.get(f"/v1/api-keys?limit=2&cursor={cursor}").json
    assert len(second["data"]) == 2 and second["pagination"]["has_more"] is False
    assert second["data"][0]["id"] == ids[0]


def test_invalid_key_requests_are_422_and_create_nothing(api):
    for body in (
        {"name": "x", "scopes": ["projects:delete"]},
        {"name": "x", "scopes": []},
        {"name": "x"},
        {"scopes": ["*"]},
        {"name": "", "scopes": ["*"]},
        {"name": "x", "scopes": ["*"], "expires_at": "2001-01-01T00:00:00Z"},
        {"name": "x", "scopes": ["*"], "expires_at": "tomorrow"},
        {"name": "x", "scopes": ["*"], "expires_at": "2999-01-01T00:00:00"},
        {"name": "x", "scopes": ["*"], "key": "sk_live_mine"},
    ):
        response = api.post("/v1/api-keys", body)
        assert refused(response, "validation_failed", 422), (body, response.json)
    assert len(api.get("/v1/api-keys").json["data"]) == 1


def test_revoked_key_is_refused_at_once_even_when_cached(api, client):
    created = create_key(api)
    holder = Api(client, created["key"])
    assert holder.get("/v1/auth/me").status_code == 200  # now in the cache

    assert api.delete(f"/v1/api-keys/{created['id']}").status_code == 204

    assert refused(holder.get("/v1/auth/me"))
    assert refused(api.get(f"/v1/api-keys/{created['id']}"), "not_found", 404)
    assert refused(api.delete(f"/v1/api-keys/{created['id']}"), "not_found", 404)
    assert created["id"] not in [k["id"] for k in api.get("/v1/api-keys").json["data"]]


def test_revocation_by_another_instance_reaches_a_cached_key_within_the_ttl(
    api, client, monkeypatch
):
    from chalicelib.core.settings import get_settings
    from chalicelib.store import keys as store

    # A TTL wide enough that a loaded machine still answers from the cache in between
    monkeypatch.setenv("SHIPYARD_KEY_CACHE_TTL_S", "1.5")
    get_settings.cache_clear()
    created = create_key(api)
    holder = Api(client, created["key"])
    assert holder.get("/v1/auth/me").status_code == 200

    # Revoked in the database only, as another Lambda instance would: no local eviction
    store.revoke(store.get_by_id(created["id"]), rfc3339(utcnow()))
    assert holder.get("/v1/auth/me").status_code == 200  # still trusted from the cache

    # Polled at a human pace, so the key's rate limit is never what ends the loop
    deadline = time.monotonic() + 5
    while (response := holder.get("/v1/auth/me")).status_code == 200:
        assert time.monotonic() < deadline, "the revocation never reached the cached key"
        time.sleep(0.1)
    assert refused(response)


def test_the_cache_ttl_cannot_be_set_above_five_seconds(monkeypatch):
    from pydantic import ValidationError

    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("SHIPYARD_KEY_CACHE_TTL_S", "30")
    get_settings.cache_clear()
    with pytest.raises(ValidationError):
        get_settings()


def test_expired_key_is_refused_at_once_from_the_cache(api, client, monkeypatch, dynamodb_calls):
    from chalicelib.identity import auth

    expires = utcnow() + timedelta(hours=1)
    created = create_key(api, expires_at=rfc3339(expires))
    assert created["expires_at"] == rfc3339(expires)
    holder = Api(client, created["key"])
    assert holder.get("/v1/auth/me").status_code == 200

    dynamodb_calls.clear()
    monkeypatch.setattr(auth, "utcnow", lambda: expires + timedelta(seconds=1))
    response = holder.get("/v1/auth/me")
    assert refused(response)
    assert "expired" in response.json["error"]["message"]
    assert dynamodb_calls == []  # refused from the cached record


def test_a_key_stored_with_a_past_expiry_is_refused(api, client):
    from chalicelib.identity.keys import issue

    workspace_id = api.get("/v1/auth/me").json["data"]["workspace"]["id"]
    _, secret = issue(
        name="old",
        scopes=["*"],
        workspace_id=workspace_id,
        expires_at=rfc3339(utcnow() - timedelta(seconds=1)),
    )
    assert refused(Api(client, secret).get("/v1/auth/me"))


def test_rotation_with_grace_keeps_the_old_key_until_the_grace_ends(api, client, monkeypatch):
    from chalicelib.identity import auth

    old = create_key(api, ["projects:read", "api-keys:read"], name="Old")
    old_api = Api(client, old["key"])
    assert old_api.get("/v1/projects").status_code == 200

    rotated = api.post(f"/v1/api-keys/{old['id']}/rotate", {})
    assert rotated.status_code == 201
    new = rotated.json["data"]
    assert new["id"] != old["id"] and new["key"] != old["key"]
    assert (new["name"], new["scopes"]) == (old["name"], old["scopes"])

    # Both work during the grace period (24 h by default)
    assert old_api.get("/v1/projects").status_code == 200
    assert Api(client, new["key"]).get("/v1/projects").status_code == 200
    old_view = api.get(f"/v1/api-keys/{old['id']}").json["data"]
    grace_end = utcnow() + timedelta(hours=24)
    assert abs((grace_end - _parse(old_view["expires_at"])).total_seconds()) < 5

    # After it, the old key is refused and the new one is not
    later = grace_end + timedelta(minutes=1)
    monkeypatch.setattr(auth, "utcnow", lambda: later)
    assert refused(old_api.get("/v1/projects"))
    assert Api(client, new["key"]).get("/v1/projects").status_code == 200

    # A rotated-out key can't be rotated again
    again = api.post(f"/v1/api-keys/{old['id']}/rotate", {"grace_period_hours": 1})
    assert refused(again, "invalid_state", 409)


def test_rotation_with_zero_grace_stops_the_old_key_at_once(api, client):
    old = create_key(api)
    old_api = Api(client, old["key"])
    assert old_api.get("/v1/auth/me").status_code == 200  # cached

    new = api.post(f"/v1/api-keys/{old['id']}/rotate", {"grace_period_hours": 0}).json["data"]

    assert refused(old_api.get("/v1/auth/me"))
    assert Api(client, new["key"]).get("/v1/auth/me").status_code == 200


def test_rotation_grace_must_be_0_to_168_hours(api):
    old = create_key(api)
    for hours in (-1, 169, "24", 1.5, None):
        response = api.post(f"/v1/api-keys/{old['id']}/rotate", {"grace_period_hours": hours})
        assert refused(response, "validation_failed", 422), hours
    assert len(api.get("/v1/api-keys").json["data"]) == 2


def test_at_most_five_active_keys(api):
    keys = [create_key(api, name=f"k{i}") for i in range(4)]  # and the initial key: 5

    over = api.post("/v1/api-keys", {"name": "sixth", "scopes": ["*"]})

    assert refused(over, "feature_limit_reached", 403)
    assert over.json["error"]["details"] == {"feature": "api_keys", "limit": 5, "used": 5}
    assert len(api.get("/v1/api-keys").json["data"]) == 5
    # Rotation replaces a key: it takes no new slot
    assert api.post(f"/v1/api-keys/{keys[0]['id']}/rotate", {}).status_code == 201
    assert refused(
        api.post("/v1/api-keys", {"name": "s", "scopes": ["*"]}), "feature_limit_reached", 403
    )
    # Revocation gives a slot back
    assert api.delete(f"/v1/api-keys/{keys[1]['id']}").status_code == 204
    assert api.post("/v1/api-keys", {"name": "sixth", "scopes": ["*"]}).status_code == 201


def test_expired_keys_give_their_slot_back(api):
    from chalicelib.identity.keys import issue

    workspace_id = api.get("/v1/auth/me").json["data"]["workspace"]["id"]
    for i in range(3):
        create_key(api, name=f"k{i}")
    issue(
        name="expired",
        scopes=["*"],
        workspace_id=workspace_id,
        expires_at=rfc3339(utcnow() - timedelta(seconds=1)),
    )

    assert api.post("/v1/api-keys", {"name": "fifth", "scopes": ["*"]}).status_code == 201
    assert refused(
        api.post("/v1/api-keys", {"name": "6", "scopes": ["*"]}), "feature_limit_reached", 403
    )


def test_a_key_cannot_grant_scopes_its_creator_lacks(api, client):
    limited = Api(client, create_key(api, ["api-keys:write", "projects:read"])["key"])

    for scopes, missing in (
        (["projects:write"], "projects:write"),
        (["projects:read", "deployments:write"], "deployments:write"),
        (["*"], "*"),
    ):
        response = limited.post("/v1/api-keys", {"name": "up", "scopes": scopes})
        assert refused(response, "forbidden", 403)
        assert response.json["error"]["details"] == {"required_scope": missing}
    assert (
        limited.post("/v1/api-keys", {"name": "ok", "scopes": ["projects:read"]}).status_code == 201
    )
    assert len(api.get("/v1/api-keys").json["data"]) == 3


def test_rotating_a_broader_key_is_an_escalation_and_is_refused(api, client):
    limited = Api(client, create_key(api, ["api-keys:write", "api-keys:read"])["key"])
    full = create_key(api, ["*"], name="full")

    response = limited.post(f"/v1/api-keys/{full['id']}/rotate", {"grace_period_hours": 0})

    assert refused(response, "forbidden", 403)
    assert api.get(f"/v1/api-keys/{full['id']}").json["data"]["expires_at"] is None


def test_scopes_are_enforced_on_key_routes(api, client):
    reader = Api(client, create_key(api, ["api-keys:read"])["key"])
    nobody = Api(client, create_key(api, ["projects:read"])["key"])
    target = create_key(api, name="target")

    assert reader.get("/v1/api-keys").status_code == 200
    assert reader.get(f"/v1/api-keys/{target['id']}").status_code == 200
    for response, scope in (
        (reader.post("/v1/api-keys", {"name": "x", "scopes": ["api-keys:read"]}), "api-keys:write"),
        (reader.delete(f"/v1/api-keys/{target['id']}"), "api-keys:write"),
        (reader.post(f"/v1/api-keys/{target['id']}/rotate", {}), "api-keys:write"),
        (nobody.get("/v1/api-keys"), "api-keys:read"),
        (nobody.get(f"/v1/api-keys/{target['id']}"), "api-keys:read"),
        (nobody.get("/v1/workspaces"), "workspaces:read"),
    ):
        assert refused(response, "forbidden", 403)
        assert response.json["error"]["details"]["required_scope"] == scope
    assert api.get(f"/v1/api-keys/{target['id']}").status_code == 200


MANGLED = {
    "checksum-broken": lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),
    "truncated": lambda k: k[:-6],
    "truncated-short": lambda k: k[:20],
    "one-too-long": lambda k: k + "0",
    "leading-space": lambda k: " " + k,
    "trailing-space": lambda k: k + " ",
    "trailing-tab": lambda k: k + "\t",
    "trailing-newline": lambda k: k + "\n",
    "inner-space": lambda k: k[:15] + " " + k[15:],
    "prefix-case": lambda k: k.replace("sk_live_", "SK_LIVE_"),
    "prefix-only": lambda k: "sk_live_",
}


def test_malformed_keys_are_refused_without_reading_the_database(api, anonymous, dynamodb_calls):
    for case, mangle in MANGLED.items():
        dynamodb_calls.clear()
        response = anonymous.get(
            "/v1/projects", headers={"Authorization": f"Bearer {mangle(api.key)}"}
        )
        assert refused(response), case
        assert dynamodb_calls == [], case


def test_well_formed_unknown_keys_are_refused(api, anonymous):
    from chalicelib.identity import tokens

    # The checksum covers the body, so these pass the form check and miss in the database
    for token in (
        tokens.generate(tokens.WORKSPACE_PREFIX),
        tokens.generate(tokens.PARTNER_PREFIX),
        api.key.replace("sk_live_", "sk_partner_"),
    ):
        response = anonymous.get("/v1/projects", headers={"Authorization": f"Bearer {token}"})
        assert refused(response), token


def test_last_used_at_is_written_at_most_once_per_interval(
    api, client, monkeypatch, dynamodb_calls
):
    from chalicelib.core.settings import get_settings

    created = create_key(api)
    holder = Api(client, created["key"])
    dynamodb_calls.clear()
    for _ in range(5):
        assert holder.get("/v1/auth/me").status_code == 200
    assert dynamodb_calls.count("UpdateItem") == 1

    monkeypatch.setenv("SHIPYARD_LAST_USED_INTERVAL_S", "0.2")
    get_settings.cache_clear()
    dynamodb_calls.clear()
    deadline = time.monotonic() + 5
    while dynamodb_calls.count("UpdateItem") == 0:
        assert time.monotonic() < deadline
        holder.get("/v1/auth/me")
    assert api.get(f"/v1/api-keys/{created['id']}").json["data"]["last_used_at"] is not None


def test_a_cached_authenticated_get_reads_nothing_for_auth(api, dynamodb_calls):
    assert api.get("/v1/auth/me").status_code == 200
    dynamodb_calls.clear()
    assert api.get("/v1/auth/me").status_code == 200
    assert dynamodb_calls == []


def test_auth_me_describes_a_workspace_key(api, make_workspace, client):
    workspace_id, key = make_workspace("Pro shop", tier="pro")
    me = Api(client, key).get("/v1/auth/me").json["data"]
    assert me["principal"]["type"] == "workspace_key"
    assert me["principal"]["key_id"] == me["principal"]["id"]
    assert me["workspace"]["id"] == workspace_id
    assert me["workspace"]["tier"] == "pro"
    assert me["scopes"] == ["*"]
    assert me["tier"] == "pro"
    assert me["rate_limit"] == {"requests_per_minute": 5000, "burst": 0.3, "capacity": 6500}


def test_workspace_key_naming_another_workspace_is_404(api, make_workspace):
    own = api.get("/v1/auth/me").json["data"]["workspace"]["id"]
    other, _ = make_workspace("Other")
    assert api.get("/v1/projects", headers={"X-Workspace-ID": own}).status_code == 200
    for named in (other, "ws_doesnotexist", "garbage"):
        response = api.get("/v1/projects", headers={"X-Workspace-ID": named})
        assert refused(response, "not_found", 404), named


def _parse(text):
    from chalicelib.core.clock import parse_rfc3339

    return parse_rfc3339(text)


def test_active_count_follows_creation_revocation_rotation_and_expiry(api):
    from chalicelib.identity import keys

    workspace_id = api.get("/v1/auth/me").json["data"]["workspace"]["id"]
    assert keys.active_count(workspace_id) == 1
    first = create_key(api)
    assert keys.active_count(workspace_id) == 2
    api.post(f"/v1/api-keys/{first['id']}/rotate", {})
    assert keys.active_count(workspace_id) == 2
    api.delete(f"/v1/api-keys/{first['id']}")
    assert keys.active_count(workspace_id) == 2  # the rotated-out key no longer counted
    past = rfc3339(utcnow() - timedelta(seconds=1))
    keys.issue(name="expired", scopes=["*"], workspace_id=workspace_id, expires_at=past)
    assert keys.active_count(workspace_id) == 2  # counted at creation, given back on reading
