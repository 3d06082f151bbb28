"""Stream tickets for the log streams (`POST .../logs/stream-ticket`, `?ticket=`): a ticket
opens each of its own deployment's streams (build log, runtime log) once, without a bearer;
EventSource's reconnects reuse it until it expires; an expired, foreign, reused or altered
ticket is 401."""

from __future__ import annotations

import time

import pytest

from tests.integration.test_deployment_status import new_deployment
from tests.integration.test_logs import write


@pytest.fixture(autouse=True)
def short_streams(monkeypatch):
    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("SHIPYARD_SSE_WAIT_S", "0.2")
    monkeypatch.setenv("SHIPYARD_STREAM_TICKET_TTL_S", "2")
    get_settings.cache_clear()


@pytest.fixture
def deployments(api, project):
    from chalicelib.store import projects as project_store

    item = project_store.get(project["workspace_id"], project["id"])
    first, second = new_deployment(item), new_deployment(item)
    write(first, "npm install")
    return first, second


def base(item):
    return f"/v1/projects/{item['project_id']}/deployments/{item['id']}/logs"


def ticket_for(api, item):
    response = api.post(base(item) + "/stream-ticket")
    assert response.status_code == 201, response.json
    return response.json["data"]["ticket"]


def stream(api, item, ticket, last_event_id=None, log="logs"):
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    path = f"/v1/projects/{item['project_id']}/deployments/{item['id']}/{log}/stream"
    return api.client.http.request("GET", f"{path}?ticket={ticket}", headers=headers)


def test_a_ticket_opens_the_stream_once_and_its_reconnects(api, deployments):
    # Given
    first, _ = deployments
    ticket = ticket_for(api, first)
    # When
    opened = stream(api, first, ticket)
    again = stream(api, first, ticket)
    reconnect = stream(api, first, ticket, last_event_id="1")
    # Then
    assert opened.status_code == 200, opened.body
    assert b"npm install" in opened.body
    assert again.status_code == 401
    assert b"already used" in again.body
    assert reconnect.status_code == 200


def test_a_ticket_of_another_deployment_is_refused(api, deployments):
    first, second = deployments
    response = stream(api, second, ticket_for(api, first))
    assert response.status_code == 401
    assert b"another deployment" in response.body


def test_an_expired_ticket_is_refused(api, deployments):
    first, _ = deployments
    ticket = ticket_for(api, first)
    time.sleep(3.1)
    response = stream(api, first, ticket, last_event_id="1")
    assert response.status_code == 401
    assert b"expired" in response.body


def test_an_altered_ticket_and_no_credential_are_refused(api, deployments):
    first, _ = deployments
    ticket = ticket_for(api, first)
    body, _, signature = ticket.partition(".")
    altered = stream(api, first, body[:-2] + "xx." + signature)
    bare = api.client.http.request("GET", f"{base(first)}/stream")
    assert altered.status_code == 401 and bare.status_code == 401


def test_another_workspace_cannot_get_a_ticket(api, deployments, make_workspace):
    first, _ = deployments
    _, other = make_workspace("Other")
    assert api.post(base(first) + "/stream-ticket", key=other).status_code == 404


def test_a_ticket_opens_its_deployments_runtime_log_stream_too_and_no_other(api, deployments):
    # Given
    first, second = deployments
    ticket = ticket_for(api, first)
    # When
    build = stream(api, first, ticket)
    runtime = stream(api, first, ticket, log="runtime-logs")
    again = stream(api, first, ticket, log="runtime-logs")
    reconnect = stream(api, first, ticket, last_event_id="1", log="runtime-logs")
    foreign = stream(api, second, ticket_for(api, first), log="runtime-logs")
    bare = api.client.http.request("GET", f"{base(first).removesuffix('logs')}runtime-logs/stream")
    # Then
    assert build.status_code == 200 and b"npm install" in build.body
    assert runtime.status_code == 200, runtime.body
    assert runtime.headers["Content-Type"].startswith("text/event-stream")
    assert b'"type":"status"' in runtime.body and b"npm install" not in runtime.body
    assert again.status_code == 401 and b"already used" in again.body
    assert reconnect.status_code == 200
    assert foreign.status_code == 401 and b"another deployment" in foreign.body
    assert bare.status_code == 401
