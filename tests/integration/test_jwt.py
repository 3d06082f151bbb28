"""User JWTs: RS256 tokens of the configured issuer, its JWKS served on localhost,
memberships and roles, and every way a token can be wrong."""

from __future__ import annotations

import time

import pytest

from chalicelib import admin
from tests.integration.conftest import AUDIENCE, ISSUER, run_admin


def refused(response, code="unauthorized", status=401):
    return response.status_code == status and response.json["error"]["code"] == code


def test_a_user_creates_a_workspace_owns_it_and_acts_in_it(make_user):
    user = make_user("alice")
    me = user.get("/v1/auth/me").json["data"]
    assert me["principal"] == {
        "type": "user",
        "id": "user:alice",
        "key_id": None,
        "partner_id": None,
        "user_id": "alice",
        "role": None,
    }
    assert me["workspace"] is None and me["scopes"] == []
    assert user.get("/v1/workspaces").json["data"] == []

    created = user.post("/v1/workspaces", {"name": "Alice's apps"})
    assert created.status_code == 201
    workspace = created.json["data"]
    assert workspace["slug"] == "alice-s-apps" and workspace["tier"] == "free"
    assert [w["id"] for w in user.get("/v1/workspaces").json["data"]] == [workspace["id"]]

    inside = user.acting_in(workspace["id"])
    me = inside.get("/v1/auth/me").json["data"]
    assert (me["principal"]["role"], me["scopes"], me["workspace"]["id"]) == (
        "owner",
        ["*"],
        workspace["id"],
    )
    assert inside.post("/v1/projects", {"name": "Site"}).status_code == 201
    assert [p["name"] for p in inside.get("/v1/projects").json["data"]] == ["Site"]
    assert inside.post("/v1/api-keys", {"name": "ci", "scopes": ["*"]}).status_code == 201


def test_a_user_token_on_a_workspace_route_without_x_workspace_id_is_400(make_user):
    user = make_user()
    for method, path in (
        ("GET", "/v1/projects"),
        ("POST", "/v1/projects"),
        ("GET", "/v1/api-keys"),
        ("GET", "/v1/projects/prj_x/env"),
    ):
        response = user.request(method, path, {"name": "x"} if method == "POST" else None)
        assert refused(response, "bad_request", 400), path
        assert "X-Workspace-ID" in response.json["error"]["message"]


def test_x_workspace_id_naming_a_workspace_the_user_is_not_in_is_404(make_user, make_workspace):
    alice, bob = make_user("alice"), make_user("bob")
    theirs = bob.post("/v1/workspaces", {"name": "Bob's"}).json["data"]["id"]
    other, _ = make_workspace("Keyed")
    for named in (theirs, other, "ws_01nope", "not-a-workspace"):
        for path in ("/v1/projects", "/v1/auth/me"):
            response = alice.acting_in(named).get(path)
            assert refused(response, "not_found", 404), (named, path)


def test_x_workspace_id_that_cannot_be_an_id_is_404_without_a_read(make_user, dynamodb_calls):
    alice = make_user("alice")
    assert alice.get("/v1/auth/me").status_code == 200
    for named in ("ws_" + "a" * 3000, "x" * 3000):
        dynamodb_calls.clear()
        response = alice.acting_in(named).get("/v1/projects")
        assert refused(response, "not_found", 404)
        assert dynamodb_calls == []
        dynamodb_calls.clear()
        assert refused(alice.get(f"/v1/workspaces/{named}"), "not_found", 404)
        assert dynamodb_calls == []


@pytest.mark.parametrize(
    ("role", "can_read", "can_write_projects", "can_write_keys", "can_rename"),
    [
        ("owner", True, True, True, True),
        ("admin", True, True, True, False),
        ("developer", True, True, True, False),
        ("viewer", True, False, False, False),
    ],
)
def test_roles_map_to_scopes(
    make_user, make_workspace, role, can_read, can_write_projects, can_write_keys, can_rename
):
    workspace_id, _ = make_workspace("Team")
    run_admin(admin.main, "add-member", "--workspace", workspace_id, "--user", "m", "--role", role)
    member = make_user("m").acting_in(workspace_id)

    assert (member.get("/v1/projects").status_code == 200) is can_read
    created = member.post("/v1/projects", {"name": "App"})
    assert (created.status_code == 201) is can_write_projects
    if not can_write_projects:
        assert created.json["error"]["details"] == {"required_scope": "projects:write"}
    key = member.post("/v1/api-keys", {"name": "k", "scopes": ["projects:read"]})
    assert (key.status_code == 201) is can_write_keys
    renamed = member.patch(f"/v1/workspaces/{workspace_id}", {"name": "Renamed"})
    assert (renamed.status_code == 200) is can_rename
    if not can_rename:
        assert refused(renamed, "forbidden", 403)
    assert [w["id"] for w in make_user("m").get("/v1/workspaces").json["data"]] == [workspace_id]


def test_a_member_cannot_give_a_key_more_than_their_role_holds(make_user, make_workspace):
    workspace_id, _ = make_workspace("Team")
    run_admin(admin.main, "add-member", "--workspace", workspace_id, "--user", "dev")
    developer = make_user("dev").acting_in(workspace_id)

    for scopes, missing in (
        (["*"], "*"),
        (["projects:read", "workspaces:write"], "workspaces:write"),
    ):
        response = developer.post("/v1/api-keys", {"name": "k", "scopes": scopes})
        assert refused(response, "forbidden", 403)
        assert response.json["error"]["details"] == {"required_scope": missing}
    allowed = developer.post("/v1/api-keys", {"name": "k", "scopes": ["deployments:write"]})
    assert allowed.status_code == 201


def test_a_removed_member_is_refused_at_once(make_user, make_workspace):
    workspace_id, _ = make_workspace("Team")
    run_admin(admin.main, "add-member", "--workspace", workspace_id, "--user", "gone")
    member = make_user("gone").acting_in(workspace_id)
    assert member.get("/v1/projects").status_code == 200

    run_admin(admin.main, "remove-member", "--workspace", workspace_id, "--user", "gone")

    assert refused(member.get("/v1/projects"), "not_found", 404)


def test_add_member_to_a_missing_workspace_fails(aws, capsys):
    code = admin.main(["--aws", "add-member", "--workspace", "ws_nope", "--user", "u"])
    assert code == 1
    assert "Workspace not found" in capsys.readouterr().err


def _bad_tokens(issuer):
    unpublished = issuer.new_key(publish=False)
    now = int(time.time())
    claims = issuer.claims("mallory")
    return {
        "wrong-audience": issuer.token(aud="https://someone-else.test"),
        "wrong-issuer": issuer.token(iss="https://evil.test/"),
        "expired": issuer.token(iat=now - 7200, exp=now - 3600),
        "not-yet-valid": issuer.token(nbf=now + 3600),
        "no-expiry": issuer.token(exp=None),
        "no-subject": issuer.token(sub=None),
        "alg-none": issuer.unsigned({"alg": "none", "typ": "JWT"}, claims),
        "alg-none-with-kid": issuer.unsigned({"alg": "none", "kid": issuer.kid}, claims),
        "hs256-with-public-key": issuer.unsigned(
            {"alg": "HS256", "kid": issuer.kid}, claims, secret=issuer.public_pem()
        ),
        "rs512": _rs512(issuer, claims),
        "unknown-kid": issuer.token(kid=unpublished),
        "known-kid-wrong-key": _signed_with(issuer, unpublished, issuer.kid, claims),
        "no-kid": _signed_with(issuer, issuer.kid, None, claims),
        "tampered-payload": _tampered(issuer.token("mallory")),
        "truncated": issuer.token()[:-10],
        "two-segments": ".".join(issuer.token().split(".")[:2]),
    }


def _signed_with(issuer, signing_kid, header_kid, claims):
    import jwt

    headers = {"kid": header_kid} if header_kid else None
    return jwt.encode(claims, issuer.keys[signing_kid], algorithm="RS256", headers=headers)


def _rs512(issuer, claims):
    import jwt

    return jwt.encode(
        claims, issuer.keys[issuer.kid], algorithm="RS512", headers={"kid": issuer.kid}
    )


def _tampered(token):
    import base64
    import json

    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_bad_tokens_are_401_and_change_nothing(issuer, anonymous, make_workspace):
    from tests.integration.conftest import Acting

    # Given mallory is a member, so that only the token itself can be the reason
    workspace_id, _ = make_workspace("Target")
    run_admin(admin.main, "add-member", "--workspace", workspace_id, "--user", "mallory")

    for case, token in _bad_tokens(issuer).items():
        caller = Acting(anonymous.client, token, workspace_id)
        for path in ("/v1/auth/me", "/v1/projects"):
            assert refused(caller.get(path)), (case, path)
        assert refused(caller.post("/v1/workspaces", {"name": "x"})), case

    # Then a good token of the same user still works, and nothing was created
    mallory = Acting(anonymous.client, issuer.token("mallory"))
    assert mallory.acting_in(workspace_id).get("/v1/projects").status_code == 200
    assert [w["id"] for w in mallory.get("/v1/workspaces").json["data"]] == [workspace_id]


def test_the_jwks_is_cached(make_user, issuer):
    user = make_user()
    for _ in range(5):
        assert user.get("/v1/auth/me").status_code == 200
    assert issuer.fetches == 1


def test_an_unknown_kid_triggers_at_most_one_refresh(make_user, issuer, anonymous):
    from tests.integration.conftest import Acting

    assert make_user().get("/v1/auth/me").status_code == 200
    assert issuer.fetches == 1
    strangers = [issuer.token(kid=issuer.new_key(publish=False)) for _ in range(5)]

    for token in strangers:
        assert refused(Acting(anonymous.client, token).get("/v1/auth/me"))

    assert issuer.fetches == 2


def test_a_key_the_issuer_rotated_in_is_found_by_a_refresh(
    make_user, issuer, anonymous, monkeypatch
):
    from chalicelib.core.settings import get_settings
    from tests.integration.conftest import Acting

    monkeypatch.setenv("SHIPYARD_OIDC_JWKS_REFRESH_INTERVAL_S", "0")
    get_settings.cache_clear()
    assert make_user().get("/v1/auth/me").status_code == 200

    new_kid = issuer.new_key()
    response = Acting(anonymous.client, issuer.token("alice", kid=new_kid)).get("/v1/auth/me")

    assert response.status_code == 200
    assert issuer.fetches == 2


def test_cached_keys_keep_working_while_the_issuer_is_down(make_user, issuer, monkeypatch):
    from chalicelib.core.settings import get_settings

    user = make_user()
    assert user.get("/v1/auth/me").status_code == 200
    monkeypatch.setenv("SHIPYARD_OIDC_JWKS_TTL_S", "0")
    monkeypatch.setenv("SHIPYARD_OIDC_JWKS_REFRESH_INTERVAL_S", "0")
    get_settings.cache_clear()
    issuer.up = False

    assert user.get("/v1/auth/me").status_code == 200
    assert issuer.fetches == 2


def test_an_issuer_down_from_the_start_is_503(make_user, issuer):
    issuer.up = False
    response = make_user().get("/v1/auth/me")
    assert refused(response, "service_unavailable", 503)
    # No fetch before the refresh interval (30 s) has passed: that is when to come back.
    assert 1 <= int(response.headers["Retry-After"]) <= 30


def test_jwts_are_refused_when_no_issuer_is_configured(client, aws):
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.integration.conftest import Acting

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "u", "iat": now, "exp": now + 60},
        key,
        algorithm="RS256",
        headers={"kid": "k"},
    )
    assert refused(Acting(client, token).get("/v1/auth/me"))


def test_neither_a_key_nor_a_jwt_is_401(anonymous):
    for token in ("hello", "a.b", "a.b.c.d", "eyJ.e30.", "x" * 9000):
        response = anonymous.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert refused(response), token


def test_warm_partner_and_user_requests_read_nothing_for_auth(
    make_user, make_partner, dynamodb_calls
):
    user = make_user("warm")
    user_ws = user.post("/v1/workspaces", {"name": "U"}).json["data"]["id"]
    partner = make_partner()
    partner_ws = partner.post("/v1/workspaces", {"name": "P"}).json["data"]["id"]
    for caller in (user.acting_in(user_ws), partner.acting_in(partner_ws), partner, user):
        assert caller.get("/v1/auth/me").status_code == 200
        dynamodb_calls.clear()
        assert caller.get("/v1/auth/me").status_code == 200
        assert dynamodb_calls == []
