"""Projects through the HTTP surface, on moto."""


def test_create_get_list_update_delete(api):
    # Given a new project
    created = api.post("/v1/projects", {"name": "My Shop"})
    assert created.status_code == 201
    project = created.json["data"]
    assert project["slug"] == "my-shop"
    assert project["id"].startswith("prj_")
    assert project["status"] == "idle"
    assert created.headers["X-Request-ID"].startswith("req_")

    # When it is read, listed and changed
    assert api.get(f"/v1/projects/{project['id']}").json["data"] == project
    listed = api.get("/v1/projects").json
    assert [p["id"] for p in listed["data"]] == [project["id"]]
    assert listed["pagination"] == {"next_cursor": None, "has_more": False}
    patched = api.patch(f"/v1/projects/{project['id']}", {"slug": "shop", "run": {"port": 8080}})
    assert patched.status_code == 200
    assert patched.json["data"]["slug"] == "shop"
    assert patched.json["data"]["run"]["port"] == 8080
    assert patched.json["data"]["run"]["health_check_path"] == "/"

    # Then the old slug is free again and delete removes it
    assert api.post("/v1/projects", {"name": "Other", "slug": "my-shop"}).status_code == 201
    assert api.delete(f"/v1/projects/{project['id']}").status_code == 204
    assert api.get(f"/v1/projects/{project['id']}").status_code == 404
    assert api.post("/v1/projects", {"name": "Again", "slug": "shop"}).status_code == 201


def test_slug_taken_is_conflict_and_leaves_one_project(api):
    assert api.post("/v1/projects", {"name": "Web"}).status_code == 201
    second = api.post("/v1/projects", {"name": "Web"})
    assert second.status_code == 409
    assert second.json["error"]["code"] == "conflict"
    assert len(api.get("/v1/projects").json["data"]) == 1


def test_pagination_newest_first_with_cursor(client, make_workspace):
    from tests.conftest import Api

    # A free workspace holds 3 projects; this needs 5.
    api = Api(client, make_workspace("Starter", tier="starter")[1])
    ids = [api.post("/v1/projects", {"name": f"App {i}"}).json["data"]["id"] for i in range(5)]
    first = api.get("/v1/projects?limit=2").json
    assert [p["id"] for p in first["data"]] == ids[::-1][:2]
    assert first["pagination"]["has_more"] is True
    cursor = first["pagination"]["next_cursor"]
    second = api.get(f"/v1/projects?limit=2&cursor={cursor}").json
    assert [p["id"] for p in second["data"]] == ids[::-1][2:4]
    third = api.get(f"/v1/projects?limit=2&cursor={second['pagination']['next_cursor']}").json
    assert [p["id"] for p in third["data"]] == ids[:1]
    assert third["pagination"] == {"next_cursor": None, "has_more": False}


def test_forged_and_foreign_cursors_are_invalid(api, client, make_workspace):
    from tests.conftest import Api

    for i in range(3):
        api.post("/v1/projects", {"name": f"App {i}"})
    cursor = api.get("/v1/projects?limit=1").json["pagination"]["next_cursor"]
    body, _, signature = cursor.partition(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature
    for bad in (forged, "garbage", cursor + "x"):
        response = api.get(f"/v1/projects?cursor={bad}")
        assert response.status_code == 400
        assert response.json["error"]["code"] == "invalid_cursor"
    other = Api(client, make_workspace("Other")[1])
    assert other.get(f"/v1/projects?cursor={cursor}").json["error"]["code"] == "invalid_cursor"


def test_a_cursor_continues_only_the_list_with_its_filters(api):
    for i in range(3):
        api.post("/v1/projects", {"name": f"App {i}"})
    filtered = api.get("/v1/projects?limit=1&status=idle&search=app")
    cursor = filtered.json["pagination"]["next_cursor"]
    same = api.get(f"/v1/projects?limit=1&status=idle&search=app&cursor={cursor}")
    assert same.status_code == 200 and len(same.json["data"]) == 1
    for other in ("", "&status=idle", "&search=app", "&status=idle&search=ap"):
        response = api.get(f"/v1/projects?limit=1{other}&cursor={cursor}")
        assert response.status_code == 400, other
        assert response.json["error"]["code"] == "invalid_cursor"


def test_filters_by_status_and_search(api):
    api.post("/v1/projects", {"name": "Billing API"})
    api.post("/v1/projects", {"name": "Website", "slug": "marketing-site"})
    names = lambda r: sorted(p["name"] for p in r.json["data"])  # noqa: E731
    assert names(api.get("/v1/projects?search=billing")) == ["Billing API"]
    assert names(api.get("/v1/projects?search=marketing")) == ["Website"]
    assert names(api.get("/v1/projects?status=idle")) == ["Billing API", "Website"]
    assert api.get("/v1/projects?status=running").json["data"] == []
    bad = api.get("/v1/projects?status=bogus")
    assert bad.status_code == 400 and bad.json["error"]["code"] == "bad_request"
    assert api.get("/v1/projects?limit=0").status_code == 400
    assert api.get("/v1/projects?limit=101").status_code == 400


def test_bad_bodies_get_clear_errors_and_write_nothing(api):
    cases = [
        ("{not json", 400, "bad_request"),
        ("[1, 2]", 400, "bad_request"),
        ({"name": 5}, 422, "validation_failed"),
        ({"name": "x", "unknown": True}, 422, "validation_failed"),
        ({"name": "x" * 10_000}, 422, "validation_failed"),
        ({"name": "x", "slug": "Upper"}, 422, "validation_failed"),
        ({"name": "x", "slug": "caf\u00e9"}, 422, "validation_failed"),
        ({"name": "x", "run": {"port": 70000}}, 422, "validation_failed"),
        ({}, 422, "validation_failed"),
        ("x" * (1024 * 1024 + 1), 413, "payload_too_large"),
    ]
    for body, status, code in cases:
        response = api.post("/v1/projects", body)
        assert (response.status_code, response.json["error"]["code"]) == (status, code), body
        assert response.json["error"]["request_id"] == response.headers["X-Request-ID"]
    fields = api.post("/v1/projects", {"name": "", "slug": "A"}).json["error"]["details"]["fields"]
    assert set(fields) == {"name", "slug"}
    assert api.get("/v1/projects").json["data"] == []


def test_env_vars_secrets_are_encrypted_and_never_returned(api):
    from chalicelib.store.projects import projects as table

    project = api.post("/v1/projects", {"name": "Env"}).json["data"]
    path = f"/v1/projects/{project['id']}/env"
    put = api.put(
        path,
        {"vars": {"PLAIN": {"value": "1"}, "TOKEN": {"value": "hunter2", "secret": True}}},
    )
    assert put.status_code == 200
    assert put.json["data"]["vars"] == {
        "PLAIN": {"value": "1", "secret": False, "environments": ["production", "preview"]},
        "TOKEN": {"value": None, "secret": True, "environments": ["production", "preview"]},
    }
    stored = table.get({"workspace_id": project["workspace_id"], "sk": project["id"]})
    assert "hunter2" not in str(stored)
    scoped = {"PLAIN": {"value": "2", "environments": ["preview"]}}
    assert api.put(path, {"vars": scoped}).json["data"]["vars"]["PLAIN"] == {
        "value": "2",
        "secret": False,
        "environments": ["preview"],
    }
    unknown = api.put(path, {"vars": {"PLAIN": {"value": "3", "environments": ["staging"]}}})
    assert unknown.status_code == 422
    assert api.delete(f"{path}/PLAIN").status_code == 204
    assert api.delete(f"{path}/PLAIN").status_code == 404
    assert list(api.get(path).json["data"]["vars"]) == ["TOKEN"]
    bad = api.put(path, {"vars": {"lower": {"value": "x"}}})
    assert bad.status_code == 422


def test_variables_past_what_a_project_can_hold_are_422_and_change_nothing(api):
    project = api.post("/v1/projects", {"name": "Env"}).json["data"]
    path = f"/v1/projects/{project['id']}/env"
    value = "x" * 32768
    first = {f"K{i}": {"value": value} for i in range(7)}
    assert api.put(path, {"vars": first}).status_code == 200
    # Each request is well under 1 MiB; together they would pass DynamoDB's item size.
    more = {f"S{i}": {"value": value} for i in range(7)}
    response = api.put(path, {"vars": more})
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_failed"
    assert "vars" in response.json["error"]["details"]["fields"]
    assert sorted(api.get(path).json["data"]["vars"]) == sorted(first)
    assert api.get(f"/v1/projects/{project['id']}").status_code == 200


def test_secret_values_kms_cannot_encrypt_are_422(api):
    project = api.post("/v1/projects", {"name": "Env"}).json["data"]
    path = f"/v1/projects/{project['id']}/env"
    largest = {"CERT": {"value": "x" * 4096, "secret": True}}
    assert api.put(path, {"vars": largest}).status_code == 200
    response = api.put(path, {"vars": {"BIG": {"value": "\u00e9" * 2049, "secret": True}}})
    assert response.status_code == 422
    assert list(response.json["error"]["details"]["fields"]) == ["vars.BIG"]
    assert list(api.get(path).json["data"]["vars"]) == ["CERT"]
    assert api.put(path, {"vars": {"PLAIN": {"value": "x" * 32768}}}).status_code == 200


def test_secret_env_decrypts_for_builds(api):
    from chalicelib.projects.service import resolved_env
    from chalicelib.store.projects import projects as table

    project = api.post("/v1/projects", {"name": "Env"}).json["data"]
    secrets = {"T": {"value": "s3", "secret": True}, "EMPTY": {"value": "", "secret": True}}
    assert api.put(f"/v1/projects/{project['id']}/env", {"vars": secrets}).status_code == 200
    stored = table.get({"workspace_id": project["workspace_id"], "sk": project["id"]})
    assert resolved_env(stored) == {"T": "s3", "EMPTY": ""}


def test_patch_with_every_field_null_changes_nothing_and_is_not_an_error(api):
    project = api.post("/v1/projects", {"name": "Nulls", "run": {"port": 3000}}).json["data"]
    fields = ("name", "slug", "description", "runtime", "build", "run", "git")
    patched = api.patch(f"/v1/projects/{project['id']}", dict.fromkeys(fields))
    assert patched.status_code == 200
    unchanged = {k: v for k, v in patched.json["data"].items() if k != "updated_at"}
    assert unchanged == {k: v for k, v in project.items() if k != "updated_at"}
    assert api.get(f"/v1/projects/{project['id']}").json["data"]["run"]["port"] == 3000
