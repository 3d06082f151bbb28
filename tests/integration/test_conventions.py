"""The contract's section 1 and minimal authentication, through the test client."""


def test_missing_or_garbled_authorization_is_401(anonymous, api):
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
        response = anonymous.get("/v1/projects", headers=headers)
        assert response.status_code == 401
        assert response.json["error"]["code"] == "unauthorized"
    key = api.key
    broken = key[:-1] + ("A" if key[-1] != "A" else "B")
    for token in (broken, key[:-3], key + " ", "sk_live_" + "0" * 38):
        response = anonymous.get("/v1/projects", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token


def test_checksum_failure_does_not_touch_the_database(anonymous, api, monkeypatch):
    from chalicelib.store import keys

    def fail(*args):
        raise AssertionError("the database was read")

    monkeypatch.setattr(keys.api_keys, "get", fail)
    broken = api.key[:-1] + ("A" if api.key[-1] != "A" else "B")
    response = anonymous.get("/v1/projects", headers={"Authorization": f"Bearer {broken}"})
    assert response.status_code == 401


def test_other_workspace_project_is_404(api, client, make_workspace):
    from tests.conftest import Api

    project = api.post("/v1/projects", {"name": "Mine"}).json["data"]
    other = Api(client, make_workspace("Other")[1])
    for method, body in (("GET", None), ("PATCH", {"name": "x"}), ("DELETE", None)):
        response = other.request(method, f"/v1/projects/{project['id']}", body)
        assert response.status_code == 404, method
    assert other.get(f"/v1/projects/{project['id']}/env").status_code == 404
    assert other.get("/v1/projects").json["data"] == []
    assert api.get(f"/v1/projects/{project['id']}").status_code == 200


def test_ids_that_cannot_exist_are_404_without_a_read(api, dynamodb_calls):
    # On AWS a key longer than DynamoDB allows is a ValidationException, not a miss.
    long_id = "prj_" + "a" * 2000
    api.get("/v1/auth/me")  # the key is now verified and cached
    for method, path in (
        ("GET", f"/v1/projects/{long_id}"),
        ("GET", f"/v1/projects/{long_id}/env"),
        ("DELETE", f"/v1/projects/{long_id}"),
        ("GET", "/v1/api-keys/key_" + "a" * 2000),
        ("GET", "/v1/workspaces/ws_" + "a" * 3000),
    ):
        dynamodb_calls.clear()
        response = api.request(method, path)
        assert response.status_code == 404, path[:30]
        assert dynamodb_calls == [], path[:30]


def test_scopes_are_enforced(api, client):
    from chalicelib.identity.keys import issue
    from tests.conftest import Api

    workspace_id = api.get("/v1/projects").json and None
    project = api.post("/v1/projects", {"name": "Scoped"}).json["data"]
    workspace_id = project["workspace_id"]
    _, read_only = issue(name="ro", scopes=["projects:read"], workspace_id=workspace_id)
    reader = Api(client, read_only)
    assert reader.get(f"/v1/projects/{project['id']}").status_code == 200
    denied = reader.post("/v1/projects", {"name": "Nope"})
    assert denied.status_code == 403
    assert denied.json["error"]["details"] == {"required_scope": "projects:write"}


def test_method_not_allowed_and_unhandled_errors_use_the_envelope(api, monkeypatch):
    response = api.request("PUT", "/v1/projects")
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"
    assert response.headers["X-Request-ID"] == response.json["error"]["request_id"]

    from chalicelib.projects import service as projects

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(projects, "get", explode)
    failed = api.get("/v1/projects/prj_x")
    assert failed.status_code == 500
    assert failed.json["error"]["code"] == "internal_error"
    assert "secret internals" not in failed.body.decode()
    assert "Traceback" not in failed.body.decode()


def test_json_nothing_can_store_is_400_not_a_crash(api):
    deep = "[" * 100_000 + "]" * 100_000
    for body in (deep, '{"name": NaN}', '{"name": "x", "a": Infinity}', '{"name": 1e400}'):
        response = api.post("/v1/projects", body)
        assert response.status_code == 400, body[:20]
        assert response.json["error"]["code"] == "bad_request"
    project = api.post("/v1/projects", {"name": "Deleted"}).json["data"]
    # A route that takes no body still reads one to tell retries apart.
    response = api.request(
        "DELETE", f"/v1/projects/{project['id']}", deep, headers={"Idempotency-Key": "deep"}
    )
    assert response.status_code == 204
    assert [p["name"] for p in api.get("/v1/projects").json["data"]] == []


def test_every_log_line_of_a_request_carries_its_id(api, monkeypatch):
    import json
    import logging

    from chalicelib.core.log import logger
    from chalicelib.projects import service as projects

    lines: list[dict] = []

    class Keep(logging.Handler):
        """The JSON lines as the app's own formatter writes them, when they are written."""

        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(logger().registered_formatter.format(record)))

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(projects, "get", explode)
    keep = Keep()
    logging.getLogger("shipyard").addHandler(keep)
    try:
        failed = api.get("/v1/projects/prj_x")
        served = api.get("/v1/projects")
    finally:
        logging.getLogger("shipyard").removeHandler(keep)
    assert failed.status_code == 500
    error = next(line for line in lines if line["message"] == "Unhandled error")
    assert error["request_id"] == failed.json["error"]["request_id"]
    access = [line["request_id"] for line in lines if line["message"] == "request"]
    assert access == [failed.headers["X-Request-ID"], served.headers["X-Request-ID"]]


def test_health_reports_dependencies(anonymous):
    response = anonymous.get("/v1/health")
    assert response.status_code == 200
    assert set(response.json["data"]["dependencies"]) == {"dynamodb", "s3", "sqs"}


def test_health_reports_the_sandbox_on_and_off(anonymous, monkeypatch):
    from chalicelib.host import sandbox

    assert anonymous.get("/v1/health").json["data"]["sandbox"] == "on"
    monkeypatch.setattr(sandbox, "missing", lambda: "no bwrap (this test)")
    assert anonymous.get("/v1/health").json["data"]["sandbox"] == "off"


def test_health_is_503_when_a_dependency_is_down(anonymous):
    from chalicelib.aws.clients import client
    from chalicelib.core.settings import get_settings

    client("s3").delete_bucket(Bucket=get_settings().bucket)
    response = anonymous.get("/v1/health")
    assert response.status_code == 503
    assert response.json["data"]["dependencies"]["s3"]["status"] == "down"
    assert int(response.headers["Retry-After"]) >= 1


def test_openapi_is_valid_3_1_and_lists_routes(anonymous):
    from openapi_spec_validator import validate

    document = anonymous.get("/v1/openapi.json").json
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert "post" in document["paths"]["/v1/projects"]
    assert "ProjectCreate" in document["components"]["schemas"]


def test_openapi_documents_the_idempotency_key_on_writes(anonymous):
    document = anonymous.get("/v1/openapi.json").json
    create = document["paths"]["/v1/projects"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in create["parameters"]]
    listing = document["paths"]["/v1/projects"]["get"]
    assert "Idempotency-Key" not in [p["name"] for p in listing["parameters"]]


def test_openapi_is_exact_enough_for_a_generated_client(anonymous):
    document = anonymous.get("/v1/openapi.json").json
    paths, schemas = document["paths"], document["components"]["schemas"]
    error = {"$ref": "#/components/schemas/Error"}
    for path, operations in paths.items():
        for method, operation in operations.items():
            # Every status it can answer, each error with the envelope and X-Request-ID
            assert "default" not in operation["responses"], (method, path)
            for status, answer in operation["responses"].items():
                assert "X-Request-ID" in answer["headers"], (method, path, status)
                if int(status) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    # the envelope, or beside what the route answers itself (MCP's JSON-RPC)
                    assert schema == error or error in schema["anyOf"], (method, path, status)
            if "{project_id}" in path:
                assert "404" in operation["responses"]
    deployments = paths["/v1/projects/{project_id}/deployments"]
    # Real types, ranges and enums of parameters
    listing = {p["name"]: p["schema"] for p in deployments["get"]["parameters"]}
    assert "running" in listing["status"]["enum"]
    assert listing["limit"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    assert listing["project_id"]["pattern"].startswith("^prj_")
    wait = paths["/v1/projects/{project_id}/deployments/{deployment_id}/wait"]["get"]
    timeout = next(p for p in wait["parameters"] if p["name"] == "timeout_s")["schema"]
    assert (timeout["type"], timeout["minimum"], timeout["maximum"]) == ("integer", 1, 25)
    key = next(p for p in deployments["post"]["parameters"] if p["name"] == "Idempotency-Key")
    assert key["schema"]["pattern"].startswith("^[\\x21-\\x7e]")
    assert "429" in deployments["post"]["responses"]
    assert "Retry-After" in deployments["post"]["responses"]["429"]["headers"]
    # Bodies: exactly one source; the multipart archive; env var names by pattern
    body = deployments["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert len(schemas[body["$ref"].split("/")[-1]]["oneOf"]) == 2
    deploy = paths["/v1/projects/{project_id}/deploy"]["post"]["requestBody"]["content"]
    assert deploy["multipart/form-data"]["schema"]["required"] == ["archive"]
    env_vars = schemas["EnvUpdate"]["properties"]["vars"]
    assert env_vars["additionalProperties"] is False
    assert list(env_vars["patternProperties"]) == ["^[A-Z_][A-Z0-9_]{0,254}$"]
    # Links from what creates a resource to the operations on it
    links = paths["/v1/projects"]["post"]["responses"]["201"]["links"]
    assert links["get_project"]["parameters"] == {"project_id": "$response.body#/data/id"}
    to_deployment = deployments["post"]["responses"]["202"]["links"]["get_deployment"]
    assert to_deployment["parameters"] == {
        "project_id": "$request.path.project_id",
        "deployment_id": "$response.body#/data/id",
    }


def test_openapi_describes_the_mcp_routes_json_rpc(anonymous):
    operation = anonymous.get("/v1/openapi.json").json["paths"]["/v1/mcp"]["post"]
    answers = operation["responses"]

    def refs(schema):
        return [ref["$ref"].rsplit("/", 1)[-1] for ref in schema.get("anyOf", [schema])]

    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert refs(body) == [
        "JSONRPCRequest",
        "JSONRPCNotification",
        "JSONRPCResponse",
        "JSONRPCError",
    ]
    assert refs(answers["200"]["content"]["application/json"]["schema"]) == [
        "JSONRPCResponse",
        "JSONRPCError",
    ]
    assert "content" not in answers["202"]
    assert refs(answers["400"]["content"]["application/json"]["schema"]) == [
        "JSONRPCError",
        "Error",
    ]
    assert sorted(answers) == ["200", "202", "400", "401", "409", "413", "422", "429"]


def test_query_parameters_are_read_as_the_document_declares_them(api):
    project = api.post("/v1/projects", {"name": "Q"}).json["data"]
    path = f"/v1/projects/{project['id']}/deployments"
    for query in ("status=", "status=RUNNING", "limit=0", "limit=1.5", "limit=", "limit=+5"):
        refused = api.get(f"{path}?{query}")
        assert refused.status_code == 400 and refused.json["error"]["code"] == "bad_request"
    assert api.get(f"{path}?status=running&limit=100").status_code == 200
    assert api.get("/v1/entitlements/check").status_code == 400  # feature is required


def test_an_empty_workspace_header_is_a_bad_request_not_its_absence(api):
    refused = api.get("/v1/projects", headers={"X-Workspace-ID": " "})
    assert refused.status_code == 400 and "X-Workspace-ID" in refused.json["error"]["message"]
