"""Git as a deployment's source, end to end in one process: repositories made with the
git CLI (file://), moto's executing Step Functions, the local pump, LocalBuilder's clone
and build, apps that answer real HTTP. GitHub pushes are signed with GitHub's own code
(@octokit/webhooks-methods, run by node)."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from chalicelib.core.clock import now_iso
from tests.git_support import commit, github_signature, make_repo, push_payload
from tests.integration.conftest import log_lines, wait_for

APP = """
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = open("version.txt").read().strip()

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{VERSION} db={os.environ.get('DATABASE_URL', '-')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""
SECRET = "a-webhook-secret-of-16+"


pytestmark = pytest.mark.workflows


@pytest.fixture
def repo(tmp_path):
    return make_repo(
        tmp_path / "repo",
        {"app.py": APP, "Procfile": "web: python app.py", "version.txt": "v1"},
        "Ship v1",
    )


@pytest.fixture
def git_project(api, repo):
    body = {
        "name": "Web",
        "git": {"repository": f"file://{repo}", "branch": "main", "webhook_secret": SECRET},
        "run": {"health_check_timeout_s": 5},
    }
    created = api.post("/v1/projects", body)
    assert created.status_code == 201, created.json
    return created.json["data"]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def push(api, repo, ref: str, after: str, delivery: str, **extra):
    body = json.dumps(push_payload(f"file://{repo}", "acme/web", ref, after, **extra)).encode()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": github_signature(SECRET, body),
    }
    return api.post("/v1/hooks/github", body, headers=headers)


def test_a_project_deploys_a_ref_of_its_repository(api, git_project, repo, pump):
    sha = commit(repo, {"version.txt": "v2"}, "Ship v2\n\nwith a body")
    path = f"/v1/projects/{git_project['id']}/deployments"

    created = api.post(path, {"git": {"ref": "main"}})
    again = api.post(path, {"git": {"ref": sha}})

    assert created.status_code == 202, created.json
    deployment = created.json["data"]
    assert again.status_code == 202
    assert again.json["data"]["id"] == deployment["id"], "one commit, one flight"
    assert deployment["environment"] == "production"
    running = wait_for(api, deployment, ("running", "failed"))
    assert running["status"] == "running", log_lines(api, deployment)
    assert running["source"] == {
        "type": "git",
        "ref": "main",
        "sha": sha,
        "branch": "main",
        "message": "Ship v2",
        "trigger": "api",
        "upload_id": None,
        "deployment_id": None,
    }
    assert fetch(running["url"]) == "v2 db=-"
    messages = [line["message"] for line in log_lines(api, deployment)]
    assert f"Cloned {sha[:12]}: Ship v2" in messages


def test_pushes_deploy_production_and_previews_with_their_own_env(api, git_project, repo, pump):
    env = {
        "DATABASE_URL": {"value": "postgres://prod", "environments": ["production"]},
    }
    assert api.put(f"/v1/projects/{git_project['id']}/env", {"vars": env}).status_code == 200
    listed = api.get(f"/v1/projects/{git_project['id']}/env").json["data"]["vars"]
    assert listed["DATABASE_URL"]["environments"] == ["production"]
    main_sha = commit(repo, {"version.txt": "prod"}, "Production")

    answer = push(api, repo, "refs/heads/main", main_sha, "delivery-1")

    assert answer.status_code == 202, answer.json
    [production] = answer.json["data"]["deployments"]
    production = wait_for(api, production, ("running", "failed"))
    assert (production["status"], production["environment"]) == ("running", "production")
    project_url = api.get(f"/v1/projects/{git_project['id']}").json["data"]["url"]
    assert fetch(project_url) == "prod db=postgres://prod"

    # A feature branch: a preview at its own URL, without production's database URL.
    first_sha = commit(repo, {"version.txt": "feature-1"}, "Feature", branch="feature/x")
    [first] = push(api, repo, "refs/heads/feature/x", first_sha, "delivery-2").json["data"][
        "deployments"
    ]
    first = wait_for(api, first, ("running", "failed"))
    assert (first["status"], first["environment"]) == ("running", "preview"), first
    assert first["source"]["branch"] == "feature/x"
    assert fetch(first["url"]) == "feature-1 db=-"
    project = api.get(f"/v1/projects/{git_project['id']}").json["data"]
    assert (project["url"], project["current_deployment_id"]) == (project_url, production["id"])
    assert fetch(project_url) == "prod db=postgres://prod"

    # A newer push of the branch replaces its preview.
    second_sha = commit(repo, {"version.txt": "feature-2"}, "Feature 2", branch="feature/x")
    [second] = push(api, repo, "refs/heads/feature/x", second_sha, "delivery-3").json["data"][
        "deployments"
    ]
    second = wait_for(api, second, ("running", "failed"))
    assert fetch(second["url"]) == "feature-2 db=-"
    assert wait_for(api, first, ("stopped",))["status"] == "stopped"
    base = f"/v1/projects/{git_project['id']}/deployments"
    previews = api.get(base + "?environment=preview").json["data"]
    assert [d["id"] for d in previews] == [second["id"], first["id"]]
    productions = api.get(base + "?environment=production").json["data"]
    assert [d["id"] for d in productions] == [production["id"]]
    assert api.get(base + "?environment=staging").status_code == 400

    # A rollback returns to production deployments only: a preview's artifact would run
    # with its preview env snapshot.
    refused = api.post(f"/v1/projects/{git_project['id']}/rollback", {"deployment_id": first["id"]})
    assert refused.status_code == 409, refused.json
    assert refused.json["error"]["code"] == "invalid_state"
    assert "is a preview" in refused.json["error"]["message"]

    # Deleting the branch stops its preview; production keeps running.
    deleted = push(api, repo, "refs/heads/feature/x", "0" * 40, "delivery-4", deleted=True)
    assert deleted.status_code == 202
    assert deleted.json["data"]["stopped"] == 1
    assert wait_for(api, second, ("stopped",))["status"] == "stopped"
    assert wait_for(api, production, ("running",))["status"] == "running"


def test_the_sweeper_stops_a_preview_idle_for_its_days(api, git_project, repo, pump, monkeypatch):
    from chalicelib.core.settings import get_settings
    from chalicelib.pipeline import sweeper

    sha = commit(repo, {"version.txt": "p"}, "Preview", branch="idle")
    path = f"/v1/projects/{git_project['id']}/deployments"
    preview = api.post(path, {"git": {"ref": "idle"}}).json["data"]
    assert preview["environment"] == "preview"
    preview = wait_for(api, preview, ("running", "failed"))
    assert (preview["status"], preview["source"]["sha"]) == ("running", sha)
    assert sweeper.sweep()["previews_stopped"] == 0

    monkeypatch.setenv("SHIPYARD_PREVIEW_IDLE_S", "0")
    get_settings.cache_clear()
    # Times are kept to the second: on a quick machine the preview runs within the second
    # it was created in, which is not yet before a cutoff of now.
    while now_iso() <= preview["created_at"]:
        time.sleep(0.05)
    counts = sweeper.sweep()

    assert counts["previews_stopped"] == 1
    assert wait_for(api, preview, ("stopped",))["status"] == "stopped"
