"""Fixtures shared by the integration tests: moto's mock_aws with the resources of infra/,
the app behind chalice's test client, and factories of workspaces and keys."""

from __future__ import annotations

import json
import os
import socket

import pytest

TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "SHIPYARD_STAGE": "test",
    "SHIPYARD_CURSOR_SECRET": "test-cursor-secret-0123456789",
    # Tests send traffic to loopback only: every outbound connection Shipyard makes
    # (webhook deliveries, git clones) is refused unless it goes to a loopback address.
    "SHIPYARD_OUTBOUND_LOOPBACK_ONLY": "1",
}


@pytest.fixture(autouse=True)
def test_environment(monkeypatch):
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    from chalicelib.core.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def aws(request, monkeypatch):
    """moto's in-process AWS, with every resource of infra/resources.json created. Marked
    `workflows`, a test gets Step Functions executions that run, a deploy workflow that
    does not wait between polls and quick health-check requests."""
    from moto import mock_aws

    from chalicelib.aws.clients import reset_clients
    from chalicelib.core.settings import get_settings
    from chalicelib.identity.auth import forget_cached
    from chalicelib.local import moto_server
    from infra.provision import provision

    moto_server.patch()  # the moto the local stack runs, whichever test comes first
    config = {}
    if request.node.get_closest_marker("workflows"):
        config = {"stepfunctions": {"execute_state_machine": True}}
        monkeypatch.setenv("SHIPYARD_WORKFLOW_WAIT_S", "0")
        monkeypatch.setenv("SHIPYARD_HEALTH_CHECK_REQUEST_TIMEOUT_S", "2")
        get_settings.cache_clear()
    with mock_aws(config=config):
        reset_clients()
        forget_cached()
        provision("shipyard")
        yield
        reset_clients()
        forget_cached()


@pytest.fixture
def client(aws):
    from chalice.test import Client

    from app import app

    with Client(app) as test_client:
        yield test_client


def raw_exchange(port: int, data: bytes, host: str = "127.0.0.1", timeout: float = 30) -> bytes:
    """Send bytes as they are to a local server; read until it closes the connection."""
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(data)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


class Api:
    """The test client with JSON in and out, and a default key."""

    def __init__(self, client, key: str | None = None) -> None:
        self.client = client
        self.key = key

    def request(self, method: str, path: str, body=None, key: str | None = None, headers=None):
        sent = {"Content-Type": "application/json"}
        if key or self.key:
            sent["Authorization"] = f"Bearer {key or self.key}"
        sent.update(headers or {})
        raw = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
        response = self.client.http.request(method, path, headers=sent, body=raw or b"")
        response.json = json.loads(response.body) if response.body else None
        return response

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture
def make_workspace(aws):
    """Factory: a new workspace and its all-scopes key -> (workspace_id, key)."""
    from chalicelib.accounts.workspaces import create_with_key

    def make(name: str = "Acme", tier: str = "free") -> tuple[str, str]:
        workspace, key = create_with_key(name, tier)
        return workspace["id"], key

    return make


@pytest.fixture
def api(client, make_workspace):
    """The API as one workspace's all-scopes key sees it."""
    _, key = make_workspace()
    return Api(client, key)


@pytest.fixture
def anonymous(client):
    return Api(client)


def pytest_collection_modifyitems(items):
    for item in items:
        if os.sep + "e2e" + os.sep in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def pytest_terminal_summary(terminalreporter):
    """The fault tier's table (tests/faults): each fault, how many runs, their outcomes.
    Here, not in tests/faults/conftest.py: xdist's controller collects nothing, so only
    this conftest's hooks run where the reports of every worker arrive."""
    rows: dict[str, list[str]] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for name, value in getattr(report, "user_properties", ()):
                if name == "fault":
                    fault, outcome = value
                    rows.setdefault(fault, []).append(outcome)
    if not rows:
        return
    terminalreporter.section("faults (tests/faults)")
    width = max(len(fault) for fault in rows)
    terminalreporter.write_line(f"{'fault':<{width}}  runs  outcomes")
    for fault, outcomes in sorted(rows.items()):
        counted = ", ".join(
            f"{outcome} x{outcomes.count(outcome)}" for outcome in dict.fromkeys(outcomes)
        )
        terminalreporter.write_line(f"{fault:<{width}}  {len(outcomes):>4}  {counted}")
