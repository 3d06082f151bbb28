"""POST /v1/mcp through chalice's test client: the JSON-RPC edge and its refusals (wrong
schema, unknown tool, batches, a key without the scope, deploy_files' path and size rules),
the tools the SDK run does not call (set_env, get_deployment, cancel_deployment, redeploy) and
Idempotency-Key on a tool call.
The SDK client's end-to-end run (deploy, wait, logs, rollback) is tests/e2e/test_mcp.py."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_deployment_status import new_deployment

MCP = "/v1/mcp"


def rpc(api, method, params=None, key=None, id_=1):
    message = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        message["params"] = params
    return api.post(MCP, message, key=key)


def call(api, name, arguments, key=None):
    response = rpc(api, "tools/call", {"name": name, "arguments": arguments}, key=key)
    assert response.status_code == 200, response.body
    return response.json["result"]


@pytest.fixture
def project(api):
    return api.post("/v1/projects", {"name": "Agent site"}).json["data"]


def test_without_a_key_is_401_like_every_route(anonymous):
    # When
    response = rpc(anonymous, "tools/list")
    # Then
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"


def test_initialize_then_tools_with_schemas_from_the_rest_models(api):
    # When
    init = rpc(
        api,
        "initialize",
        {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    ).json["result"]
    tools = {t["name"]: t for t in rpc(api, "tools/list").json["result"]["tools"]}
    # Then
    assert init["protocolVersion"] == "2025-06-18"
    assert init["capabilities"]["tools"] == {"listChanged": False}
    assert set(tools) == {
        "list_projects",
        "create_project",
        "deploy_files",
        "get_deployment",
        "wait_for_deployment",
        "get_logs",
        "get_runtime_logs",
        "list_deployments",
        "rollback",
        "redeploy",
        "cancel_deployment",
        "set_env",
    }
    create = tools["create_project"]["inputSchema"]
    assert create["required"] == ["name"] and create["additionalProperties"] is False
    assert tools["set_env"]["inputSchema"]["required"] == ["project_id", "vars"]
    assert tools["wait_for_deployment"]["inputSchema"]["properties"]["timeout_s"]["maximum"] == 25
    runtime = tools["get_runtime_logs"]
    assert runtime["inputSchema"]["required"] == ["project_id", "deployment_id"]
    assert runtime["inputSchema"]["properties"]["limit"]["maximum"] == 1000
    assert runtime["annotations"]["readOnlyHint"] is True


def test_a_notification_is_accepted_without_a_body(api):
    response = api.post(MCP, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert response.status_code == 202 and not response.body


def test_a_batch_is_refused(api):
    # When
    response = api.post(MCP, [{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
    # Then
    assert response.status_code == 400
    assert response.json["error"]["code"] == -32600
    assert response.json["id"] is None


def test_malformed_json_and_unknown_methods(api):
    parse = api.post(MCP, "{not json")
    assert parse.status_code == 400 and parse.json["error"]["code"] == -32700
    unknown = rpc(api, "resources/list")
    assert unknown.json["error"]["code"] == -32601 and unknown.json["id"] == 1


def test_an_unknown_tool_is_invalid_params(api):
    response = rpc(api, "tools/call", {"name": "drop_database", "arguments": {}})
    assert response.json["error"]["code"] == -32602
    assert "drop_database" in response.json["error"]["message"]


def test_wrong_arguments_are_a_tool_error_with_the_422_envelope(api, project):
    # When
    result = call(api, "create_project", {"name": "", "colour": "red"})
    # Then
    assert result["isError"] is True
    error = result["structuredContent"]["error"]
    assert error["code"] == "validation_failed"
    assert set(error["details"]["fields"]) == {"name", "colour"}
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]


def test_results_are_the_rest_data(api, project):
    # When
    created = call(api, "create_project", {"name": "Second"})
    listed = call(api, "list_projects", {"limit": 1})
    # Then
    assert created["structuredContent"]["name"] == "Second"
    assert json.loads(created["content"][0]["text"]) == created["structuredContent"]
    assert api.get(f"/v1/projects/{created['structuredContent']['id']}").status_code == 200
    assert [p["name"] for p in listed["structuredContent"]["data"]] == ["Second"]
    assert listed["structuredContent"]["pagination"]["has_more"] is True


def test_a_key_without_the_scope_gets_the_403_envelope(api, project):
    # Given
    key = api.post("/v1/api-keys", {"name": "ro", "scopes": ["projects:read"]}).json["data"]["key"]
    # When
    listed = call(api, "list_projects", {}, key=key)
    refused = call(
        api, "set_env", {"project_id": project["id"], "vars": {"A": {"value": "1"}}}, key=key
    )
    # Then
    assert listed.get("isError") is not True
    assert refused["isError"] is True
    assert refused["structuredContent"]["error"]["code"] == "forbidden"
    assert refused["structuredContent"]["error"]["details"]["required_scope"] == "projects:write"
    assert api.get(f"/v1/projects/{project['id']}/env").json["data"]["vars"] == {}


def test_another_workspaces_project_is_not_found(api, project, make_workspace):
    _, other = make_workspace("Other")
    result = call(api, "list_deployments", {"project_id": project["id"]}, key=other)
    assert result["structuredContent"]["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["../x", "/etc/x", "a/../../x", "", "dir/"])
def test_deploy_files_refuses_paths_that_escape(api, project, path):
    # When
    result = call(api, "deploy_files", {"project_id": project["id"], "files": {path: "x"}})
    # Then
    assert result["isError"] is True
    error = result["structuredContent"]["error"]
    assert error["code"] == "validation_failed"
    assert path in error["details"]["fields"]["files"][0]
    assert api.get(f"/v1/projects/{project['id']}/deployments").json["data"] == []


def test_deploy_files_with_more_files_than_an_archive_may_hold(api, project):
    files = {f"f{i}.txt": "" for i in range(20_001)}
    result = call(api, "deploy_files", {"project_id": project["id"], "files": files})
    assert result["structuredContent"]["error"]["code"] == "validation_failed"
    assert "entry limit" in result["structuredContent"]["error"]["message"]


def test_deploy_files_takes_ten_thousand_files(api, project):
    # Given: within the archive's 20,000-entry limit
    files = {f"assets/{i}.txt": str(i) for i in range(10_000)}
    files["index.html"] = "<h1>many</h1>"
    # When
    result = call(api, "deploy_files", {"project_id": project["id"], "files": files})
    # Then
    deployment = result["structuredContent"]
    assert deployment["status"] == "pending" and deployment["source"]["type"] == "upload"
    listed = api.get(f"/v1/projects/{project['id']}/deployments").json["data"]
    assert [d["id"] for d in listed] == [deployment["id"]]


def test_get_runtime_logs_answers_the_rest_page_and_not_another_workspaces(
    api, project, make_workspace
):
    # Given
    from chalicelib.store import projects as project_store

    deployment = new_deployment(project_store.get(project["workspace_id"], project["id"]))
    ref = {"project_id": project["id"], "deployment_id": deployment["id"]}
    path = f"/v1/projects/{project['id']}/deployments/{deployment['id']}/runtime-logs"
    _, other = make_workspace("Other")
    # When
    result = call(api, "get_runtime_logs", {**ref, "after": 0, "limit": 5})
    rest = api.get(path + "?after=0&limit=5").json
    foreign = call(api, "get_runtime_logs", ref, key=other)
    wrong = call(api, "get_runtime_logs", {**ref, "limit": 0})
    # Then
    assert result.get("isError") is not True
    assert result["structuredContent"] == rest
    assert rest["status"] == "pending" and rest["pagination"]["next_cursor"] == "0"
    assert json.loads(result["content"][0]["text"]) == rest
    assert foreign["isError"] is True
    assert foreign["structuredContent"]["error"]["code"] == "not_found"
    assert wrong["structuredContent"]["error"]["code"] == "validation_failed"


def test_the_body_is_read_as_the_documents_json_rpc_message(api):
    # A client's response or error is accepted with no body, as a notification is
    for message in (
        {"jsonrpc": "2.0", "id": 7, "result": {}},
        {"jsonrpc": "2.0", "id": None, "error": {"code": -1, "message": "no"}},
    ):
        response = api.post(MCP, message)
        assert response.status_code == 202 and not response.body, message
    # What none of the four message types describes is a 400 with id null, not taken
    for message in (
        {"method": "ping"},
        {"jsonrpc": "2.0", "method": 5},
        {"jsonrpc": "2.0", "id": 1, "error": {"code": "1", "message": "no"}},
        {"jsonrpc": "2.0", "id": True, "result": {}},
        '"ping"',  # a JSON string
    ):
        refused = api.post(MCP, message)
        assert refused.status_code == 400, message
        assert refused.json["error"]["code"] == -32600 and refused.json["id"] is None
    # An integral float is the integer JSON Schema takes it for
    pong = api.post(MCP, {"jsonrpc": "2.0", "id": 2.0, "method": "ping"})
    assert pong.status_code == 200 and pong.json == {"jsonrpc": "2.0", "id": 2, "result": {}}


def test_set_env_get_deployment_cancel_and_redeploy_act_as_their_routes(api, project):
    # Given: a pending deployment (no build runs here) and nothing ever built
    from chalicelib.store import projects as project_store

    deployment = new_deployment(project_store.get(project["workspace_id"], project["id"]))
    ref = {"project_id": project["id"], "deployment_id": deployment["id"]}
    variables = {"MODE": {"value": "prod"}, "TOKEN": {"value": "hunter2-x", "secret": True}}
    # When
    set_env = call(api, "set_env", {"project_id": project["id"], "vars": variables})
    got = call(api, "get_deployment", ref)
    canceled = call(api, "cancel_deployment", ref)
    again = call(api, "cancel_deployment", ref)
    redeploy = call(api, "redeploy", {"project_id": project["id"]})
    # Then: each is its REST route's answer
    assert set_env.get("isError") is not True
    env = api.get(f"/v1/projects/{project['id']}/env").json["data"]
    assert set_env["structuredContent"] == env
    assert env["vars"]["MODE"]["value"] == "prod" and env["vars"]["TOKEN"]["value"] is None
    assert "hunter2" not in set_env["content"][0]["text"]
    assert got["structuredContent"]["id"] == deployment["id"]
    assert got["structuredContent"]["status"] == "pending"
    assert canceled.get("isError") is not True
    assert canceled["structuredContent"]["status"] == "canceled"
    assert again["isError"] is True
    assert again["structuredContent"]["error"]["code"] == "invalid_state"
    assert redeploy["isError"] is True
    assert redeploy["structuredContent"]["error"]["code"] == "invalid_state"


def test_an_idempotency_key_answers_a_retried_tool_call_from_the_first(api):
    # Given
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "create_project", "arguments": {"name": "Once"}},
    }
    headers = {"Idempotency-Key": "mcp-retry-1"}
    # When
    first = api.post(MCP, message, headers=headers)
    retried = api.post(MCP, message, headers=headers)
    other = api.post(
        MCP,
        {**message, "params": {**message["params"], "arguments": {"name": "Twice"}}},
        headers=headers,
    )
    # Then: one project, the same answer; the key reused for another call is refused
    assert first.status_code == 200 and retried.json == first.json
    names = [p["name"] for p in api.get("/v1/projects").json["data"]]
    assert names.count("Once") == 1 and "Twice" not in names
    assert other.status_code == 422
    assert other.json["error"]["code"] == "idempotency_key_reused"


def test_a_tool_call_counts_once_against_the_rate_limit(api):
    # Given a free workspace's fresh key (60 requests a minute, no burst)
    # When it calls a tool, then makes a REST request
    called = rpc(api, "tools/call", {"name": "list_projects", "arguments": {}})
    listed = api.get("/v1/projects")
    # Then the tool call took one token, not one for the MCP request and one for its route
    assert called.status_code == 200 and called.json["result"]["isError"] is False
    assert called.headers["X-RateLimit-Remaining"] == "59"
    assert listed.headers["X-RateLimit-Remaining"] in ("58", "59")  # 59 if a second passed
