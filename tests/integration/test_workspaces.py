"""Workspaces and partner keys through HTTP and the admin command."""

from __future__ import annotations

import pytest

from tests.conftest import Api


def refused(response, code, status):
    return response.status_code == status and response.json["error"]["code"] == code


def test_create_partner_prints_its_id_and_a_working_key(make_partner):
    partner = make_partner("Hosting Co")
    assert partner.partner_id.startswith("ptn_")
    assert partner.key.startswith("sk_partner_")
    me = partner.get("/v1/auth/me").json["data"]
    assert me["principal"]["type"] == "partner_key"
    assert me["principal"]["partner_id"] == partner.partner_id
    assert me["workspace"] is None
    assert me["tier"] == "agency"
    assert partner.get("/v1/workspaces").json["data"] == []


def test_a_partner_creates_workspaces_and_acts_in_them(make_partner, client):
    partner = make_partner()
    created = partner.post(
        "/v1/workspaces", {"name": "Customer One", "tier": "pro", "settings": {"region": "eu"}}
    )
    assert created.status_code == 201
    workspace = created.json["data"]
    assert workspace["id"].startswith("ws_")
    assert (workspace["slug"], workspace["tier"], workspace["settings"]) == (
        "customer-one",
        "pro",
        {"region": "eu"},
    )
    assert set(workspace) == {"id", "name", "slug", "tier", "settings", "created_at", "updated_at"}

    # Without X-Workspace-ID a workspace route is a bad request
    assert refused(partner.get("/v1/projects"), "bad_request", 400)
    assert refused(partner.post("/v1/api-keys", {"name": "k", "scopes": ["*"]}), "bad_request", 400)

    inside = partner.acting_in(workspace["id"])
    me = inside.get("/v1/auth/me").json["data"]
    assert (me["workspace"]["id"], me["tier"]) == (workspace["id"], "pro")
    project = inside.post("/v1/projects", {"name": "Shop"}).json["data"]
    assert project["workspace_id"] == workspace["id"]
    key = inside.post("/v1/api-keys", {"name": "customer", "scopes": ["projects:read"]})
    assert key.status_code == 201
    customer = Api(client, key.json["data"]["key"])
    assert [p["id"] for p in customer.get("/v1/projects").json["data"]] == [project["id"]]
    # The partner's own key is not one of the workspace's keys
    assert [k["id"] for k in inside.get("/v1/api-keys").json["data"]] == [key.json["data"]["id"]]


def test_another_partners_workspace_is_404(make_partner):
    first, second = make_partner("One"), make_partner("Two")
    theirs = second.post("/v1/workspaces", {"name": "Theirs"}).json["data"]["id"]
    second.acting_in(theirs).post("/v1/projects", {"name": "Secret"})

    assert refused(first.get(f"/v1/workspaces/{theirs}"), "not_found", 404)
    assert refused(first.patch(f"/v1/workspaces/{theirs}", {"name": "x"}), "not_found", 404)
    assert refused(first.delete(f"/v1/workspaces/{theirs}"), "not_found", 404)
    assert refused(first.acting_in(theirs).get("/v1/projects"), "not_found", 404)
    assert first.get("/v1/workspaces").json["data"] == []
    assert second.get(f"/v1/workspaces/{theirs}").json["data"]["name"] == "Theirs"


def test_partner_workspace_list_paginates_newest_first(make_partner):
    partner = make_partner()
    ids = [partner.post("/v1/workspaces", {"name": f"W{i}"}).json["data"]["id"] for i in range(3)]
    first = partner.get("/v1/workspaces?limit=2").json
    assert [w["id"] for w in first["data"]] == ids[::-1][:2]
    cursor = first["pagination"]["next_cursor"]
    second = partner.get(f"/v1/workspaces?limit=2&cursor={cursor}").json
    assert [w["id"] for w in second["data"]] == ids[:1]
    assert second["pagination"]["has_more"] is False
    other = make_partner("Other")
    assert refused(other.get(f"/v1/workspaces?cursor={cursor}"), "invalid_cursor", 400)


def test_what_a_workspace_key_may_do_with_workspaces(api, make_workspace):
    own = api.get("/v1/auth/me").json["data"]["workspace"]["id"]
    other, _ = make_workspace("Other")

    assert [w["id"] for w in api.get("/v1/workspaces").json["data"]] == [own]
    assert api.get(f"/v1/workspaces/{own}").json["data"]["name"] == "Acme"
    renamed = api.patch(f"/v1/workspaces/{own}", {"name": "Acme Inc", "slug": "acme-inc"})
    assert renamed.status_code == 200
    assert (renamed.json["data"]["name"], renamed.json["data"]["slug"]) == ("Acme Inc", "acme-inc")

    assert refused(api.get(f"/v1/workspaces/{other}"), "not_found", 404)
    assert refused(api.patch(f"/v1/workspaces/{other}", {"name": "x"}), "not_found", 404)
    assert refused(api.delete(f"/v1/workspaces/{other}"), "not_found", 404)
    assert refused(api.patch(f"/v1/workspaces/{own}", {"tier": "enterprise"}), "forbidden", 403)
    assert refused(api.delete(f"/v1/workspaces/{own}"), "forbidden", 403)
    assert refused(api.post("/v1/workspaces", {"name": "More"}), "forbidden", 403)
    assert api.get(f"/v1/workspaces/{own}").json["data"]["tier"] == "free"


def test_workspace_scopes_are_enforced_for_keys(api, client):
    reader_key = api.post("/v1/api-keys", {"name": "r", "scopes": ["workspaces:read"]}).json
    reader = Api(client, reader_key["data"]["key"])
    own = api.get("/v1/auth/me").json["data"]["workspace"]["id"]
    assert reader.get(f"/v1/workspaces/{own}").status_code == 200
    denied = reader.patch(f"/v1/workspaces/{own}", {"name": "x"})
    assert refused(denied, "forbidden", 403)
    assert denied.json["error"]["details"] == {"required_scope": "workspaces:write"}


def test_patch_merges_settings_and_validates(api):
    own = api.get("/v1/auth/me").json["data"]["workspace"]["id"]
    path = f"/v1/workspaces/{own}"
    api.patch(path, {"settings": {"region": "eu", "color": "blue"}})
    merged = api.patch(path, {"settings": {"color": None, "team": {"size": 3.5}}}).json["data"]
    assert merged["settings"] == {"region": "eu", "team": {"size": 3.5}}
    assert api.get(path).json["data"]["settings"] == merged["settings"]
    assert merged["updated_at"] >= merged["created_at"]

    for body in (
        {"name": ""},
        {"slug": "Not A Slug"},
        {"tier": "platinum"},
        {"owner": "me"},
        {"settings": {"x" * 65: 1}},
        {"settings": {"big": "x" * 20_000}},
        {"settings": {f"k{i}": i for i in range(51)}},
    ):
        assert refused(api.patch(path, body), "validation_failed", 422), body
    many = {f"k{i}": i for i in range(49)}
    assert refused(api.patch(path, {"settings": many}), "validation_failed", 422)
    assert api.get(path).json["data"]["settings"] == merged["settings"]


def test_settings_beyond_what_dynamodb_maps_hold_are_kept_exactly(make_partner):
    # Any JSON the schema allows below the top level is accepted and read back as sent:
    # empty keys, deep nesting, numbers of any size (a fuzzer's favourite 422s).
    partner = make_partner()
    nested: list = []
    for _ in range(20):
        nested = [nested]
    settings = {"a": {"": 1}, "b": nested, "c": 10**40, "d": 1.5e-200, "e": [1, {"b": 1e130}]}
    created = partner.post("/v1/workspaces", {"name": "W", "settings": settings})
    assert created.status_code == 201 and created.json["data"]["settings"] == settings
    listed = partner.get("/v1/workspaces")
    assert [w["settings"] for w in listed.json["data"]] == [settings]
    path = f"/v1/workspaces/{created.json['data']['id']}"
    merged = partner.patch(path, {"settings": {"a": None, "f": 0.1}}).json["data"]["settings"]
    assert merged == {**{k: v for k, v in settings.items() if k != "a"}, "f": 0.1}
    assert partner.get(path).json["data"]["settings"] == merged


def test_a_partner_may_change_the_tier_and_the_key_sees_it(make_partner):
    partner = make_partner()
    workspace = partner.post("/v1/workspaces", {"name": "Grows"}).json["data"]
    assert workspace["tier"] == "free"
    changed = partner.patch(f"/v1/workspaces/{workspace['id']}", {"tier": "starter"})
    assert changed.json["data"]["tier"] == "starter"
    assert partner.acting_in(workspace["id"]).get("/v1/auth/me").json["data"]["tier"] == "starter"


def test_a_user_cannot_pick_a_paid_tier(make_user):
    user = make_user()
    assert refused(user.post("/v1/workspaces", {"name": "W", "tier": "pro"}), "forbidden", 403)
    assert user.post("/v1/workspaces", {"name": "W", "tier": "free"}).status_code == 201
    assert len(user.get("/v1/workspaces").json["data"]) == 1


def test_deleting_a_workspace_revokes_keys_and_deletes_projects(make_partner, client):
    from chalicelib.store import projects as project_store
    from chalicelib.store import workspaces as workspace_store

    partner = make_partner()
    workspace_id = partner.post("/v1/workspaces", {"name": "Doomed"}).json["data"]["id"]
    inside = partner.acting_in(workspace_id)
    for name in ("a", "b"):
        inside.post("/v1/projects", {"name": name})
    key = inside.post("/v1/api-keys", {"name": "k", "scopes": ["*"]}).json["data"]["key"]
    holder = Api(client, key)
    assert len(holder.get("/v1/projects").json["data"]) == 2  # cached now
    # A webhook with a delivery (its test event: refused at once, nothing leaves loopback)
    hook = holder.post("/v1/webhooks", {"url": "https://example.com/hook", "events": ["*"]})
    webhook_id = hook.json["data"]["id"]
    assert holder.post(f"/v1/webhooks/{webhook_id}/test").status_code == 200
    assert len(holder.get(f"/v1/webhooks/{webhook_id}/deliveries").json["data"]) == 1

    assert partner.delete(f"/v1/workspaces/{workspace_id}").status_code == 204
    from chalicelib.store import webhooks as webhook_store

    assert webhook_store.endpoints_of(workspace_id) == []
    left = webhook_store.deliveries.query_all("webhook_id = :w", {":w": webhook_id})
    assert list(left) == [], "a deleted workspace's deliveries are gone too"

    assert refused(holder.get("/v1/projects"), "unauthorized", 401)
    assert project_store.ids_in(workspace_id) == []
    assert workspace_store.get_workspace(workspace_id) is None
    assert refused(partner.get(f"/v1/workspaces/{workspace_id}"), "not_found", 404)
    assert refused(inside.get("/v1/projects"), "not_found", 404)
    assert refused(partner.delete(f"/v1/workspaces/{workspace_id}"), "not_found", 404)
    assert partner.get("/v1/workspaces").json["data"] == []


def test_an_owner_deletes_a_workspace_and_its_members_lose_it(make_user):
    from chalicelib import admin
    from tests.integration.conftest import run_admin

    owner = make_user("owner")
    workspace_id = owner.post("/v1/workspaces", {"name": "Team"}).json["data"]["id"]
    run_admin(
        admin.main,
        "add-member",
        "--workspace",
        workspace_id,
        "--user",
        "admin-1",
        "--role",
        "admin",
    )
    admin_user = make_user("admin-1")
    assert refused(admin_user.delete(f"/v1/workspaces/{workspace_id}"), "forbidden", 403)

    assert owner.delete(f"/v1/workspaces/{workspace_id}").status_code == 204

    assert admin_user.get("/v1/workspaces").json["data"] == []
    assert refused(admin_user.acting_in(workspace_id).get("/v1/projects"), "not_found", 404)


@pytest.mark.parametrize(
    "body", [{}, {"name": ""}, {"name": "x", "slug": "-bad"}, {"name": "x", "id": "ws_1"}]
)
def test_invalid_workspace_bodies_are_422(make_partner, body):
    partner = make_partner()
    assert refused(partner.post("/v1/workspaces", body), "validation_failed", 422)
    assert partner.get("/v1/workspaces").json["data"] == []
