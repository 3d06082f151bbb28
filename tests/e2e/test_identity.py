"""Identity on the real local stack, over HTTP: concurrent key creation at the limit,
and partners made by the admin command."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import requests


def call(stack, method, path, key=None, body=None, workspace=None):
    headers = {"Authorization": f"Bearer {key or stack.api_key}"}
    if workspace:
        headers["X-Workspace-ID"] = workspace
    return requests.request(method, stack.url + path, json=body, headers=headers, timeout=30)


def test_ten_parallel_key_creations_leave_exactly_the_limit(local_stack):
    # Given a workspace with its initial key (1 of 5)
    created = json.loads(local_stack.admin("create-workspace", "--name", "Race").stdout)
    key = created["api_key"]

    # When ten keys are created at once
    def create(i):
        return call(local_stack, "POST", "/v1/api-keys", key, {"name": f"k{i}", "scopes": ["*"]})

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(create, range(10)))

    # Then exactly four more exist, and the rest were refused with the limit
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 4 + [403] * 6, statuses
    refusals = [r.json()["error"] for r in responses if r.status_code == 403]
    assert {e["code"] for e in refusals} == {"feature_limit_reached"}
    assert all(e["details"]["limit"] == 5 for e in refusals)
    assert len(call(local_stack, "GET", "/v1/api-keys", key).json()["data"]) == 5


def test_a_partner_made_by_the_admin_command_works_over_http(local_stack):
    made = local_stack.admin("create-partner", "--name", "Reseller")
    assert made.returncode == 0, made.stderr
    partner = json.loads(made.stdout)
    assert set(partner) == {"partner_id", "api_key"}
    assert partner["api_key"].startswith("sk_partner_")
    key = partner["api_key"]

    workspace = call(local_stack, "POST", "/v1/workspaces", key, {"name": "Client"}).json()["data"]
    assert call(local_stack, "GET", "/v1/projects", key).status_code == 400
    project = call(local_stack, "POST", "/v1/projects", key, {"name": "Site"}, workspace["id"])
    assert project.status_code == 201
    mine = call(local_stack, "GET", "/v1/workspaces", key).json()["data"]
    assert [w["id"] for w in mine] == [workspace["id"]]
    other = json.loads(local_stack.admin("create-partner", "--name", "Rival").stdout)["api_key"]
    assert (
        call(local_stack, "GET", "/v1/projects", other, workspace=workspace["id"]).status_code
        == 404
    )
