"""Fixtures of the pipeline's integration tests (moto's mock_aws via tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def pipeline_environment(monkeypatch, tmp_path):
    """Local engines keep their state in the test's own directory; cached queue URLs and
    depths of an earlier test's moto are forgotten."""
    monkeypatch.setenv("SHIPYARD_STATE_DIR", str(tmp_path / "state"))
    from chalicelib.aws import queues

    queues.forget()
    yield
    queues.forget()


@pytest.fixture
def project(api):
    return api.post("/v1/projects", {"name": "Shop"}).json["data"]


@pytest.fixture
def pump(client):
    """The local stack's pump, in this process: the app's queue handlers run for real."""
    import app as handlers
    from chalicelib import engines
    from chalicelib.local.pump import Pump

    running = Pump(handlers.app, handlers, workers=4, poll_wait_s=1)
    running.start()
    yield running
    running.stop()
    engines.shutdown()


def wait_for(api, deployment, statuses, timeout_s=60):
    """Poll the deployment until its status is one of `statuses`; return it."""
    import time

    path = f"/v1/projects/{deployment['project_id']}/deployments/{deployment['id']}"
    deadline = time.monotonic() + timeout_s
    while True:
        current = api.get(path).json["data"]
        if current["status"] in statuses:
            return current
        assert time.monotonic() < deadline, f"still {current['status']}, wanted {statuses}"
        time.sleep(0.1)


def log_lines(api, deployment):
    path = f"/v1/projects/{deployment['project_id']}/deployments/{deployment['id']}/logs"
    return api.get(path + "?limit=1000").json["data"]


def deploy_archive(api, project_id, archive: bytes, note=None):
    from tests.pipeline_support import multipart

    fields = {"archive": ("app.tar.gz", archive)}
    if note:
        fields["note"] = note
    content_type, body = multipart(fields)
    response = api.post(
        f"/v1/projects/{project_id}/deploy", body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 202, response.json
    return response.json["data"]
