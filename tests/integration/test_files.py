"""What was built, through the HTTP surface on moto with the pipeline pumped in-process:
the artifact's file list, one file, the whole artifact as tar.gz or ZIP (a 302 to S3 when
large), 409 before the build finished, and traversal refused in every encoding."""

from __future__ import annotations

import io
import tarfile
import zipfile
from urllib.parse import quote

import pytest
import requests

from tests.conftest import Api
from tests.integration.conftest import deploy_archive, wait_for
from tests.pipeline_support import targz

SITE = {
    "index.html": "<h1>files</h1>",
    "assets/app.js": "console.log('hi')",
    "assets/style.css": "body{}",
}


@pytest.fixture
def api(client, make_workspace):
    """A pro workspace: polling for the build stays within its rate limit."""
    return Api(client, make_workspace("Builder", "pro")[1])


@pytest.fixture
def built(api, project, pump):
    deployment = deploy_archive(api, project["id"], targz(SITE))
    built = wait_for(api, deployment, {"built", "deploying", "running", "failed"})
    assert built["status"] != "failed", built
    return built


def files_path(deployment, tail=""):
    return f"/v1/projects/{deployment['project_id']}/deployments/{deployment['id']}{tail}"


def raw_get(api, path):
    headers = {"Authorization": f"Bearer {api.key}", "Accept": "*/*"}
    return api.client.http.request("GET", path, headers=headers)


def test_list_paginate_download_and_archive(api, built):
    # When
    first = api.get(files_path(built, "/files?limit=2")).json
    cursor = first["pagination"]["next_cursor"]
    rest = api.get(files_path(built, f"/files?limit=100&cursor={cursor}")).json
    one = raw_get(api, files_path(built, "/files/" + quote("assets/app.js", safe="")))
    tgz = raw_get(api, files_path(built, "/artifact"))
    zipped = raw_get(api, files_path(built, "/artifact?format=zip"))
    # Then
    listed = {f["path"]: f for f in first["data"] + rest["data"]}
    assert first["pagination"]["has_more"] is True and len(first["data"]) == 2
    assert listed["assets/app.js"] == {"path": "assets/app.js", "size": 17, "type": "file"}
    assert listed["assets"]["type"] == "directory"
    assert one.status_code == 200, one.body
    assert one.body == b"console.log('hi')"
    assert one.headers["Content-Type"] == "application/octet-stream"
    assert "attachment" in one.headers["Content-Disposition"]
    with tarfile.open(fileobj=io.BytesIO(tgz.body)) as tar:
        names = {m.name.lstrip("./") for m in tar.getmembers() if m.isfile()}
    assert set(SITE) <= names
    with zipfile.ZipFile(io.BytesIO(zipped.body)) as archive:
        assert archive.read("assets/style.css") == b"body{}"


def test_traversal_in_every_encoding_is_refused(api, built):
    attempts = [
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "%252e%252e%252fetc%252fpasswd",
        "%25252e%25252e%25252f",
        "%2Fetc%2Fpasswd",
        "assets%2F..%2F..%2Fsecret",
        "..%5C..%5Cwindows",
        "a%00b",
        "..",
    ]
    for attempt in attempts:
        response = raw_get(api, files_path(built, "/files/" + attempt))
        assert response.status_code in (400, 404), attempt
        assert b'"error"' in response.body, attempt
    missing = api.get(files_path(built, "/files/nope.txt"))
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"


def test_a_large_artifact_redirects_to_s3(api, built, monkeypatch):
    # Given
    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("SHIPYARD_ARTIFACT_INLINE_MAX_BYTES", "10")
    get_settings.cache_clear()
    # When
    response = raw_get(api, files_path(built, "/artifact?format=tar.gz"))
    # Then
    assert response.status_code == 302
    fetched = requests.get(response.headers["Location"], timeout=10)
    with tarfile.open(fileobj=io.BytesIO(fetched.content)) as tar:
        assert any(m.name.endswith("index.html") for m in tar.getmembers())
    too_big = raw_get(api, files_path(built, "/files/index.html"))
    assert too_big.status_code == 413


def test_before_the_build_finished_is_invalid_state(api, project):
    # Given: no pump runs, so the deployment stays pending
    deployment = deploy_archive(api, project["id"], targz(SITE))
    # When
    listed = api.get(files_path(deployment, "/files"))
    artifact = api.get(files_path(deployment, "/artifact"))
    # Then
    assert listed.status_code == 409 and listed.json["error"]["code"] == "invalid_state"
    assert artifact.status_code == 409


def test_another_workspace_sees_404(api, built, make_workspace):
    _, other = make_workspace("Other")
    response = api.get(files_path(built, "/files"), key=other)
    assert response.status_code == 404
