"""Tenant isolation: a principal of workspace A touching a resource of workspace B gets
404, never 403, and B is left exactly as it was.

ROUTES lists every route that names a workspace's resource in its path; a route added
to the app must be added here (test_every_resource_route_is_covered says so), with
its path parameters made in B by a factory in RESOURCES.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import TEST_ENV, Api
from tests.integration.conftest import AUDIENCE, ISSUER, Acting, Issuer

ROUTES = [
    ("GET", "/v1/projects/{project_id}", None),
    ("PATCH", "/v1/projects/{project_id}", {"name": "Taken over"}),
    ("DELETE", "/v1/projects/{project_id}", None),
    ("GET", "/v1/projects/{project_id}/env", None),
    ("PUT", "/v1/projects/{project_id}/env", {"vars": {"INJECTED": {"value": "1"}}}),
    ("DELETE", "/v1/projects/{project_id}/env/{key}", None),
    ("GET", "/v1/api-keys/{key_id}", None),
    ("DELETE", "/v1/api-keys/{key_id}", None),
    ("POST", "/v1/api-keys/{key_id}/rotate", {"grace_period_hours": 0}),
    ("GET", "/v1/workspaces/{workspace_id}", None),
    ("PATCH", "/v1/workspaces/{workspace_id}", {"name": "Taken over"}),
    ("DELETE", "/v1/workspaces/{workspace_id}", None),
    ("POST", "/v1/projects/{project_id}/uploads", {}),
    ("POST", "/v1/projects/{project_id}/deployments", {"upload_id": "upl_x"}),
    ("POST", "/v1/projects/{project_id}/deploy", None),
    ("GET", "/v1/projects/{project_id}/deployments", None),
    ("GET", "/v1/projects/{project_id}/deployments/{deployment_id}", None),
    ("POST", "/v1/projects/{project_id}/deployments/{deployment_id}/cancel", None),
    ("POST", "/v1/projects/{project_id}/deployments/{deployment_id}/retry", None),
    ("GET", "/v1/projects/{project_id}/deployments/{deployment_id}/wait", None),
    ("GET", "/v1/projects/{project_id}/deployments/{deployment_id}/logs", None),
    ("GET", "/v1/projects/{project_id}/deployments/{deployment_id}/logs/stream", None),
    ("POST", "/v1/projects/{project_id}/deployments/{deployment_id}/logs/stream-ticket", None),
    ("GET", "/v1/projects/{project_id}/deployments/{deployment_id}/files", None),
    ("GET", "/v1/projects/{project_id}/deployments/{deployment_id}/files/{path}", None),
    ("GET", "/v1/projects/{project_id}/deployments/{deployment_id}/artifact", None),
    ("POST", "/v1/projects/{project_id}/redeploy", {}),
    ("POST", "/v1/projects/{project_id}/rollback", {"deployment_id": "dep_x"}),
    ("GET", "/v1/projects/{project_id}/releases", None),
]

# Who attacks: each acts in a workspace of its own (A), or names B in X-Workspace-ID.
ATTACKERS = [
    "workspace_key",
    "workspace_key_naming_b",
    "partner_key",
    "partner_key_naming_b",
    "user",
    "user_naming_b",
]


class TenantB:
    """Workspace B, made by its partner, with one resource of each kind."""

    def __init__(self, client) -> None:
        self.partner = _partner(client, "B's platform")
        # Enterprise tiers throughout, so that the many requests here meet no rate limit.
        made = self.partner.post("/v1/workspaces", {"name": "B", "tier": "enterprise"})
        self.workspace_id = made.json["data"]["id"]
        self.api = self.partner.acting_in(self.workspace_id)
        self.params = {"workspace_id": self.workspace_id}
        for make in RESOURCES.values():
            make(self)
        self.key_holder = Api(client, self.secret_key)
        assert self.key_holder.get("/v1/projects").status_code == 200  # sets last_used_at

    def snapshot(self) -> list:
        paths = [
            f"/v1/projects/{self.params['project_id']}",
            f"/v1/projects/{self.params['project_id']}/env",
            f"/v1/projects/{self.params['project_id']}/deployments",
            f"/v1/projects/{self.params['project_id']}/deployments/{self.params['deployment_id']}",
            f"/v1/api-keys/{self.params['key_id']}",
            f"/v1/workspaces/{self.workspace_id}",
            "/v1/projects",
            "/v1/api-keys",
        ]
        seen = [self.api.get(path) for path in paths]
        # B's own key_holder request below moves its key's last_used_at once a minute: that
        # is B's use, not A's, and a slow run would otherwise see it as a change.
        for response in seen:
            for item in _items(response.json):
                item.pop("last_used_at", None)
        return [(r.status_code, r.json) for r in seen] + [
            self.key_holder.get("/v1/projects").status_code
        ]


def _items(body: dict) -> list[dict]:
    data = body.get("data")
    return data if isinstance(data, list) else [data] if isinstance(data, dict) else []


def _project(b: TenantB) -> None:
    b.params["project_id"] = b.api.post("/v1/projects", {"name": "B app"}).json["data"]["id"]


def _env(b: TenantB) -> None:
    body = {"vars": {"SECRET": {"value": "b-only", "secret": True}}}
    assert b.api.put(f"/v1/projects/{b.params['project_id']}/env", body).status_code == 200
    b.params["key"] = "SECRET"


def _api_key(b: TenantB) -> None:
    created = b.api.post("/v1/api-keys", {"name": "B key", "scopes": ["*"]}).json["data"]
    b.params["key_id"] = created["id"]
    b.secret_key = created["key"]


def _deployment(b: TenantB) -> None:
    from tests.pipeline_support import multipart, targz

    content_type, body = multipart({"archive": ("app.tar.gz", targz({"index.html": "B"}))})
    made = b.api.post(
        f"/v1/projects/{b.params['project_id']}/deploy",
        body,
        headers={"Content-Type": content_type},
    )
    b.params["deployment_id"] = made.json["data"]["id"]


def _file(b: TenantB) -> None:
    b.params["path"] = "index.html"


RESOURCES = {
    "project_id": _project,
    "key": _env,
    "key_id": _api_key,
    "path": _file,
    "deployment_id": _deployment,
}


def _partner(client, name: str) -> Acting:
    from chalicelib.identity.partners import create_with_key

    _, key = create_with_key(name)
    return Acting(client, key)


class World:
    """B and one attacker of each kind, each in a workspace A of its own. Built once for
    the module: every attempt is refused and B is compared after each, so they can share."""

    def __init__(self, client, issuer: Issuer) -> None:
        from chalicelib.accounts.workspaces import add_member, create_with_key

        self.b = TenantB(client)
        self.before = self.b.snapshot()
        workspace, key = create_with_key("A", "enterprise")
        partner = _partner(client, "A's platform")
        user = Acting(client, issuer.token("a-user"))
        add_member(workspace["id"], "a-user", "owner")
        b_id = self.b.workspace_id
        self.attackers = {
            "workspace_key": Acting(client, key),
            "workspace_key_naming_b": Acting(client, key, b_id),
            "partner_key": partner.acting_in(_own_workspace(partner)),
            "partner_key_naming_b": partner.acting_in(b_id),
            "user": user.acting_in(workspace["id"]),
            "user_naming_b": user.acting_in(b_id),
        }


def _own_workspace(partner: Acting) -> str:
    made = partner.post("/v1/workspaces", {"name": "A", "tier": "enterprise"})
    return made.json["data"]["id"]


@pytest.fixture(scope="module")
def world():
    from chalice.test import Client
    from moto import mock_aws

    from app import app
    from chalicelib.aws.clients import reset_clients
    from chalicelib.core.settings import get_settings
    from chalicelib.identity.auth import forget_cached
    from infra.provision import provision

    issuer = Issuer()
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            **TEST_ENV,
            "SHIPYARD_OIDC_ISSUER": ISSUER,
            "SHIPYARD_OIDC_AUDIENCE": AUDIENCE,
            "SHIPYARD_OIDC_JWKS_URL": issuer.url,
        }.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        get_settings.cache_clear()
        with mock_aws():
            reset_clients()
            forget_cached()
            provision("shipyard")
            with Client(app) as client:
                yield World(client, issuer)
            reset_clients()
            forget_cached()
    issuer.close()
    get_settings.cache_clear()


@pytest.mark.parametrize("attacker", ATTACKERS)
@pytest.mark.parametrize(
    ("method", "template", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
def test_a_resource_of_another_workspace_is_404(world, attacker, method, template, body):
    # Given workspace B, its resources, and a principal of workspace A
    intruder = world.attackers[attacker]
    path = template.format(**world.b.params)

    # When A's principal touches B's resource
    response = intruder.request(method, path, body)

    # Then it is not found, and B is untouched
    assert response.status_code == 404, response.json
    assert response.json["error"]["code"] == "not_found"
    assert world.b.snapshot() == world.before


@pytest.mark.parametrize("attacker", ["workspace_key", "partner_key", "user"])
def test_lists_show_nothing_of_another_workspace(world, attacker):
    intruder = world.attackers[attacker]
    b = world.b
    for path in ("/v1/projects", "/v1/api-keys", "/v1/workspaces"):
        listed = str(intruder.get(path).json["data"])
        for secret in (b.workspace_id, b.params["project_id"], b.params["key_id"]):
            assert secret not in listed, path


def test_every_resource_route_is_covered():
    import app  # noqa: F401 - registers every route
    from chalicelib.api.http import ROUTES as REGISTERED

    covered = {(method, template) for method, template, _ in ROUTES}
    with_ids = {(s.method, s.path) for s in REGISTERED if s.auth and re.search(r"{\w+}", s.path)}
    assert with_ids - covered == set(), "add these routes to ROUTES (and RESOURCES)"
    names = {name for _, template, _ in ROUTES for name in re.findall(r"{(\w+)}", template)}
    assert names <= {*RESOURCES, "workspace_id"}
