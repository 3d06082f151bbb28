"""Git on the real local stack, as a newcomer would use it: a project on a local git
repository deployed by ref, then a push signed with GitHub's own code
(@octokit/webhooks-methods) that deploys a feature branch as a preview at its own URL
while the project URL keeps serving production."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from tests.e2e.conftest import start_stack, stop_stack
from tests.git_support import commit, github_signature, make_repo, push_payload

APP = """
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = open("version.txt").read().strip()

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = VERSION.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""
SECRET = "e2e-webhook-secret-000"


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


def until_running(stack, deployment: dict) -> dict:
    path = f"/v1/projects/{deployment['project_id']}/deployments/{deployment['id']}/wait"
    deadline = time.monotonic() + 120
    while True:
        status, _, body = stack.request("GET", path + "?timeout_s=20")
        assert status == 200, body
        if body["data"]["status"] in ("running", "failed", "canceled", "stopped"):
            return body["data"]
        assert time.monotonic() < deadline, body


def test_a_local_repository_deploys_by_ref_and_a_signed_push_makes_a_preview(tmp_path):
    repo = make_repo(
        tmp_path / "repo",
        {"app.py": APP, "Procfile": "web: python app.py", "version.txt": "production"},
    )
    (tmp_path / "stack").mkdir()
    stack = start_stack(tmp_path / "stack")
    try:
        git = {"repository": f"file://{repo}", "branch": "main", "webhook_secret": SECRET}
        status, _, body = stack.request("POST", "/v1/projects", {"name": "Web", "git": git})
        assert status == 201, body
        project = body["data"]

        status, _, body = stack.request(
            "POST", f"/v1/projects/{project['id']}/deployments", {"git": {"ref": "main"}}
        )
        assert status == 202, body
        production = until_running(stack, body["data"])
        assert production["status"] == "running", production
        _, _, current = stack.request("GET", f"/v1/projects/{project['id']}")
        project_url = current["data"]["url"]
        assert fetch(project_url) == "production"

        sha = commit(repo, {"version.txt": "feature"}, "Try a feature", branch="feature")
        raw = json.dumps(
            push_payload(f"file://{repo}", "acme/web", "refs/heads/feature", sha)
        ).encode()
        request = urllib.request.Request(
            stack.url + "/v1/hooks/github",
            data=raw,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": "e2e-1",
                "X-Hub-Signature-256": github_signature(SECRET, raw),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202
            [preview] = json.loads(response.read())["data"]["deployments"]

        preview = until_running(stack, preview)
        assert (preview["status"], preview["environment"]) == ("running", "preview"), preview
        assert preview["url"] != project_url
        assert fetch(preview["url"]) == "feature"
        assert fetch(project_url) == "production"
        _, _, current = stack.request("GET", f"/v1/projects/{project['id']}")
        assert current["data"]["current_deployment_id"] == production["id"]
    finally:
        stop_stack(stack.process)
