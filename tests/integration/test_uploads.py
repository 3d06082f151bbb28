"""Uploads and the creation of deployments through the HTTP surface, on moto: the checks
made on Shipyard's side before anything is built."""

from __future__ import annotations

import json

from tests.pipeline_support import multipart, send_to_presigned, sha256, targz

ARCHIVE = targz({"index.html": "<h1>hello</h1>"})


def _builds_queue_messages():
    from chalicelib.aws.clients import client
    from chalicelib.aws.queues import url

    found = client("sqs").receive_message(
        QueueUrl=url("builds"), MaxNumberOfMessages=10, WaitTimeSeconds=0
    )
    return [json.loads(m["Body"]) for m in found.get("Messages", [])]


def test_upload_then_deploy_records_pending_and_queues_a_build(api, project):
    # Given an upload whose archive was sent to S3
    created = api.post(f"/v1/projects/{project['id']}/uploads", {})
    assert created.status_code == 201
    upload = created.json["data"]
    assert upload["id"].startswith("upl_")
    assert upload["max_bytes"] == 50 * 1024 * 1024
    assert upload["fields"]["key"].endswith(f"{upload['id']}.tar.gz")
    assert "policy" in upload["fields"]
    assert send_to_presigned(upload, ARCHIVE) in (200, 204)

    # When it is deployed
    response = api.post(
        f"/v1/projects/{project['id']}/deployments", {"upload_id": upload["id"], "note": "first"}
    )

    # Then the deployment is pending, numbered, and a build message is queued
    assert response.status_code == 202
    deployment = response.json["data"]
    assert deployment["status"] == "pending"
    assert deployment["number"] == 1
    assert deployment["note"] == "first"
    assert deployment["source"] == {
        "type": "upload",
        "upload_id": upload["id"],
        "deployment_id": None,
        "ref": None,
        "sha": None,
        "branch": None,
        "message": None,
        "trigger": None,
    }
    assert deployment["id"].startswith("dep_")
    assert _builds_queue_messages() == [
        {"kind": "build", "project_id": project["id"], "deployment_id": deployment["id"]}
    ]
    fetched = api.get(f"/v1/projects/{project['id']}/deployments/{deployment['id']}")
    assert fetched.json["data"] == deployment
    assert api.get(f"/v1/projects/{project['id']}").json["data"]["status"] == "deploying"
    logs = api.get(f"/v1/projects/{project['id']}/deployments/{deployment['id']}/logs").json
    assert [line["seq"] for line in logs["data"]] == [1]
    assert logs["data"][0]["phase"] == "system"
    assert logs["status"] == "pending"


def test_upload_that_never_arrived_is_409_upload_incomplete(api, project):
    upload = api.post(f"/v1/projects/{project['id']}/uploads", {}).json["data"]
    response = api.post(f"/v1/projects/{project['id']}/deployments", {"upload_id": upload["id"]})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "upload_incomplete"
    assert api.get(f"/v1/projects/{project['id']}/deployments").json["data"] == []


def test_an_upload_is_used_once(api, project):
    upload = api.post(f"/v1/projects/{project['id']}/uploads", {}).json["data"]
    send_to_presigned(upload, ARCHIVE)
    path = f"/v1/projects/{project['id']}/deployments"
    assert api.post(path, {"upload_id": upload["id"]}).status_code == 202
    again = api.post(path, {"upload_id": upload["id"]})
    assert again.status_code == 409
    assert again.json["error"]["code"] == "conflict"
    assert len(api.get(path).json["data"]) == 1


def test_concurrent_uses_of_one_upload_make_one_deployment(api, project):
    from concurrent.futures import ThreadPoolExecutor

    upload = api.post(f"/v1/projects/{project['id']}/uploads", {}).json["data"]
    send_to_presigned(upload, ARCHIVE)
    path = f"/v1/projects/{project['id']}/deployments"

    with ThreadPoolExecutor(4) as pool:
        codes = sorted(
            pool.map(lambda _: api.post(path, {"upload_id": upload["id"]}).status_code, range(4))
        )
    assert codes == [202, 409, 409, 409]
    assert len(api.get(path).json["data"]) == 1


def test_checksum_is_verified_on_our_side(api, project):
    path = f"/v1/projects/{project['id']}"
    wrong = api.post(f"{path}/uploads", {"sha256": sha256(b"something else")}).json["data"]
    send_to_presigned(wrong, ARCHIVE)
    refused = api.post(f"{path}/deployments", {"upload_id": wrong["id"]})
    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "checksum_mismatch"
    assert refused.json["error"]["details"]["actual"] == sha256(ARCHIVE)

    right = api.post(f"{path}/uploads", {"sha256": sha256(ARCHIVE)}).json["data"]
    send_to_presigned(right, ARCHIVE)
    assert api.post(f"{path}/deployments", {"upload_id": right["id"]}).status_code == 202
    assert api.post(f"{path}/uploads", {"sha256": "XYZ"}).status_code == 422


def test_an_object_over_the_limit_is_refused_before_building(api, project, monkeypatch):
    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("SHIPYARD_UPLOAD_MAX_BYTES", "100")
    get_settings.cache_clear()
    upload = api.post(f"/v1/projects/{project['id']}/uploads", {}).json["data"]
    assert upload["max_bytes"] == 100
    # moto, like S3 behind a lax proxy, lets the oversized object in: we check ourselves.
    send_to_presigned(upload, b"x" * 500)
    response = api.post(f"/v1/projects/{project['id']}/deployments", {"upload_id": upload["id"]})
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"


def test_bad_deployment_bodies(api, project):
    path = f"/v1/projects/{project['id']}/deployments"
    assert api.post(path, {}).status_code == 422
    assert api.post(path, {"upload_id": "upl_x", "git": {"ref": "main"}}).status_code == 422
    missing = api.post(path, {"upload_id": "upl_doesnotexist"})
    assert missing.status_code == 404
    # A well-formed git source this project can't deploy from is its state, not the body.
    git = api.post(path, {"git": {"ref": "main"}})
    assert git.status_code == 409 and git.json["error"]["code"] == "invalid_state"


def test_multipart_deploy(api, project):
    path = f"/v1/projects/{project['id']}/deploy"
    content_type, body = multipart({"archive": ("app.tar.gz", ARCHIVE), "note": "direct"})
    response = api.post(path, body, headers={"Content-Type": content_type})
    assert response.status_code == 202, response.json
    assert response.json["data"]["status"] == "pending"
    assert response.json["data"]["note"] == "direct"
    assert response.json["data"]["source"]["type"] == "upload"

    content_type, body = multipart({"other": ("x.tar.gz", ARCHIVE)})
    missing = api.post(path, body, headers={"Content-Type": content_type})
    assert missing.status_code == 422
    assert "archive" in missing.json["error"]["details"]["fields"]
    assert api.post(path, {"archive": "no"}).status_code == 400


def test_multipart_deploy_over_4_mib_is_413_with_a_hint(api, project):
    path = f"/v1/projects/{project['id']}/deploy"
    content_type, body = multipart({"archive": ("big.tar.gz", b"\0" * (4 * 1024 * 1024 + 1))})
    response = api.post(path, body, headers={"Content-Type": content_type})
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"
    assert "/uploads" in response.json["error"]["message"]
    assert api.get(f"/v1/projects/{project['id']}/deployments").json["data"] == []


def test_full_build_queue_is_503_with_retry_after(api, project, monkeypatch):
    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("SHIPYARD_BUILD_QUEUE_MAX", "1")
    get_settings.cache_clear()
    path = f"/v1/projects/{project['id']}"
    content_type, body = multipart({"archive": ("app.tar.gz", ARCHIVE)})
    headers = {"Content-Type": content_type}
    assert api.post(f"{path}/deploy", body, headers=headers).status_code == 202
    from chalicelib.aws import queues

    queues.forget()  # the depth is cached for two seconds: read it again now
    full = api.post(f"{path}/deploy", body, headers=headers)
    assert full.status_code == 503
    assert full.json["error"]["code"] == "build_queue_full"
    assert int(full.headers["Retry-After"]) > 0


def test_numbers_count_per_project(api, project):
    other = api.post("/v1/projects", {"name": "Other"}).json["data"]
    content_type, body = multipart({"archive": ("app.tar.gz", ARCHIVE)})
    headers = {"Content-Type": content_type}
    numbers = [
        api.post(f"/v1/projects/{p['id']}/deploy", body, headers=headers).json["data"]["number"]
        for p in (project, project, other, project)
    ]
    assert numbers == [1, 2, 1, 3]
    listed = api.get(f"/v1/projects/{project['id']}/deployments?limit=2").json
    assert [d["number"] for d in listed["data"]] == [3, 2]
    cursor = listed["pagination"]["next_cursor"]
    rest = api.get(f"/v1/projects/{project['id']}/deployments?limit=2&cursor={cursor}").json
    assert [d["number"] for d in rest["data"]] == [1]
    assert api.get(f"/v1/projects/{project['id']}/deployments?status=running").json["data"] == []


def test_another_workspace_sees_404(api, project, client, make_workspace):
    from tests.conftest import Api

    content_type, body = multipart({"archive": ("app.tar.gz", ARCHIVE)})
    deployment = api.post(
        f"/v1/projects/{project['id']}/deploy", body, headers={"Content-Type": content_type}
    ).json["data"]
    other = Api(client, make_workspace("Other")[1])
    base = f"/v1/projects/{project['id']}"
    for method, path in (
        ("GET", f"{base}/deployments"),
        ("GET", f"{base}/deployments/{deployment['id']}"),
        ("GET", f"{base}/deployments/{deployment['id']}/logs"),
        ("POST", f"{base}/deployments/{deployment['id']}/cancel"),
        ("POST", f"{base}/uploads"),
        ("GET", f"{base}/releases"),
    ):
        assert other.request(method, path, {} if method == "POST" else None).status_code == 404
