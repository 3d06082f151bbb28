"""Fixtures of the integration tests. Identity: an OIDC issuer of our own (an RSA key pair
and its JWKS served on a free localhost port), partners, users, and a DynamoDB call counter.
Pipeline: a per-test state directory, projects, the local pump, and polling helpers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import Api

ISSUER = "https://issuer.test/"
AUDIENCE = "https://api.shipyard.test"


class Issuer:
    """Signs tokens with its own keys and serves their JWKS over HTTP."""

    def __init__(self) -> None:
        self.keys: dict[str, object] = {}
        self.published: set[str] = set()
        self.fetches = 0
        self.up = True
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.kid = self.new_key()

    def _handler(self):
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.fetches += 1
                if not issuer.up:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps(issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                """Quiet."""

        return Handler

    def new_key(self, publish: bool = True) -> str:
        from cryptography.hazmat.primitives.asymmetric import rsa

        kid = f"kid-{len(self.keys) + 1}"
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.add(kid)
        return kid

    def jwks(self) -> dict:
        from jwt.algorithms import RSAAlgorithm

        keys = []
        for kid in sorted(self.published):
            jwk = json.loads(RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def claims(self, sub: str = "user-1", **overrides) -> dict:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 600}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, sub: str = "user-1", kid: str | None = None, **overrides) -> str:
        import jwt

        kid = kid or self.kid
        return jwt.encode(
            self.claims(sub, **overrides), self.keys[kid], algorithm="RS256", headers={"kid": kid}
        )

    def public_pem(self, kid: str | None = None) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return (
            self.keys[kid or self.kid]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def unsigned(self, header: dict, claims: dict, secret: bytes | None = None) -> str:
        """A token made by hand: `alg: none`, or an HMAC keyed with whatever is given."""

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = b""
        if secret is not None:
            signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(signature)}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer(monkeypatch, aws):
    """An OIDC issuer the app is configured to trust."""
    from chalicelib.core.settings import get_settings
    from chalicelib.identity.auth import forget_cached

    server = Issuer()
    monkeypatch.setenv("SHIPYARD_OIDC_ISSUER", ISSUER)
    monkeypatch.setenv("SHIPYARD_OIDC_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("SHIPYARD_OIDC_JWKS_URL", server.url)
    get_settings.cache_clear()
    forget_cached()
    yield server
    server.close()
    forget_cached()


class Acting(Api):
    """The API as a partner key or user token acting in one workspace (X-Workspace-ID)."""

    def __init__(self, client, token: str, workspace_id: str | None = None) -> None:
        super().__init__(client, token)
        self.workspace_id = workspace_id

    def request(self, method, path, body=None, key=None, headers=None):
        sent = {"X-Workspace-ID": self.workspace_id} if self.workspace_id else {}
        sent.update(headers or {})
        return super().request(method, path, body, key=key, headers=sent)

    def acting_in(self, workspace_id: str | None) -> Acting:
        return Acting(self.client, self.key, workspace_id)


@pytest.fixture
def make_partner(client):
    """Factory: a partner through the admin command -> Acting (no workspace chosen)."""
    from chalicelib import admin

    def make(name: str = "Platform") -> Acting:
        partner = run_admin(admin.main, "create-partner", "--name", name)
        acting = Acting(client, partner["api_key"])
        acting.partner_id = partner["partner_id"]
        return acting

    return make


@pytest.fixture
def make_user(client, issuer):
    """Factory: a user (a JWT subject of `issuer`) -> Acting (no workspace chosen)."""

    def make(sub: str = "user-1") -> Acting:
        acting = Acting(client, issuer.token(sub))
        acting.sub = sub
        return acting

    return make


def run_admin(main, *args: str) -> dict:
    """Run an admin command in this process (on moto) and parse what it prints."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--aws", *args])
    assert code == 0, out.getvalue()
    return json.loads(out.getvalue())


@pytest.fixture
def dynamodb_calls(aws):
    """The names of the DynamoDB operations made from now on, in order, leaving out the rate
    limiter's one write per request (tests/integration/test_rate_limits.py counts that)."""
    from chalicelib.aws.clients import client
    from chalicelib.core.settings import get_settings

    calls: list[str] = []
    rate_limits = get_settings().table("rate_limits")

    def record(model, params, **kwargs) -> None:
        if params.get("TableName") != rate_limits:
            calls.append(model.name)

    events = client("dynamodb").meta.events
    events.register("before-parameter-build.dynamodb", record)
    yield calls
    events.unregister("before-parameter-build.dynamodb", record)


@pytest.fixture(autouse=True)
def pipeline_environment(monkeypatch, tmp_path):
    """Local engines keep their state in the test's own directory; cached queue URLs and
    depths of an earlier test's moto are forgotten."""
    monkeypatch.setenv("SHIPYARD_STATE_DIR", str(tmp_path / "state"))
    # A replaced app stops at once, without a drain: the tests look for it gone.
    monkeypatch.setenv("SHIPYARD_DRAIN_GRACE_S", "0")
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
    from chalicelib.local.pump import Pump
    from chalicelib.pipeline import engines

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
    """The whole log as a client reads it: page after page while `has_more` (which also
    holds while a numbered line, such as a status change's own, is still being written)."""
    path = f"/v1/projects/{deployment['project_id']}/deployments/{deployment['id']}/logs"
    lines: list[dict] = []
    deadline = time.monotonic() + 10
    while True:
        after = f"&after={lines[-1]['seq']}" if lines else ""
        page = api.get(f"{path}?limit=1000{after}").json
        lines += page["data"]
        if not page["pagination"]["has_more"]:
            return lines
        assert time.monotonic() < deadline, "the log never caught up"
        if not page["data"]:
            time.sleep(0.05)


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


@pytest.fixture
def codebuild_calls(aws):
    """Every CodeBuild request's parameters, by operation, as botocore sends them to moto."""
    from chalicelib.aws.clients import client

    captured: dict[str, list[dict]] = {}
    codebuild = client("codebuild")

    def capture(params, model, **_):
        captured.setdefault(model.name, []).append(dict(params))

    codebuild.meta.events.register("before-parameter-build.codebuild", capture)
    yield captured
    codebuild.meta.events.unregister("before-parameter-build.codebuild", capture)


@pytest.fixture(scope="session")
def moto_server_port():
    """A moto server in this process, served as the local stack serves it
    (DynamoDB Streams answer only in server mode)."""
    from chalicelib.host.processes import free_port
    from chalicelib.local import moto_server

    port = free_port()
    server = moto_server.wsgi_server("127.0.0.1", port)
    threading.Thread(target=server.run, name="moto", daemon=True).start()
    yield port
    server.close()


@pytest.fixture
def server_aws(moto_server_port, monkeypatch):
    """AWS as the moto server answers it, emptied, with every resource of infra/."""
    import urllib.request

    from chalicelib.aws.clients import reset_clients
    from chalicelib.identity.auth import forget_cached
    from infra.provision import provision

    endpoint = f"http://127.0.0.1:{moto_server_port}"
    urllib.request.urlopen(urllib.request.Request(endpoint + "/moto-api/reset", method="POST"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    reset_clients()
    forget_cached()
    provision("shipyard")
    yield endpoint
    reset_clients()
    forget_cached()


@pytest.fixture
def server_client(server_aws):
    from chalice.test import Client

    from app import app

    with Client(app) as test_client:
        yield test_client


@pytest.fixture
def server_api(server_client):
    """The API, on the moto server, as one workspace's all-scopes key sees it."""
    from chalicelib.accounts.workspaces import create_with_key

    workspace, key = create_with_key("Acme", "pro")
    api = Api(server_client, key)
    api.workspace_id = workspace["id"]
    return api


@pytest.fixture
def server_pump(server_client, monkeypatch):
    """The local pump on the moto server: streams, queues and schedules run for real (the
    schedules every half second)."""
    import app as handlers
    from chalicelib.local.pump import Pump
    from chalicelib.pipeline import engines

    monkeypatch.setenv("SHIPYARD_SCHEDULE_INTERVAL_S", "0.5")
    running = Pump(handlers.app, handlers, workers=4, poll_wait_s=1)
    running.start()
    yield running
    running.stop()
    engines.shutdown()
