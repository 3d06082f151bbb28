"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright's
Python client) against the real local stack: sign in by keyboard, open a project, watch a
new deployment's log lines arrive live, roll back; follow a deployment from its build log
into its runtime log, where what the running app prints arrives live, and redeploy; names
and log lines with markup stay text; it fits 1280 and 390 pixels. Screenshots are kept in
.local/."""

from __future__ import annotations

import io
import json
import tarfile
import time
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.conftest import ROOT
from tests.pipeline_support import targz

CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / ".local"
HOSTILE = "<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"
# An app that prints a line for each request it serves: its runtime log.
APP = r"""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        print(f"served {self.path}", flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def site(version: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = f"<p>version {version}</p>".encode()
        info = tarfile.TarInfo("index.html")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def deploy(stack, project_id: str, version: str, archive: bytes | None = None) -> dict:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="archive"; filename="a.tgz"\r\n'
            "Content-Type: application/gzip\r\n\r\n"
        ).encode()
        + (archive or site(version))
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{stack.url}/v1/projects/{project_id}/deploy",
        data=body,
        headers={
            "Authorization": f"Bearer {stack.key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def wait_running(stack, project_id: str, deployment_id: str) -> dict:
    path = f"/v1/projects/{project_id}/deployments/{deployment_id}/wait?timeout_s=20"
    for _ in range(6):
        _, _, body = stack.request("GET", path)
        if body["data"]["status"] not in ("pending", "building", "built", "deploying"):
            return body["data"]
    raise AssertionError("the deployment never finished")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def project(cli_stack):
    status, _, body = cli_stack.request(
        "POST",
        "/v1/projects",
        {
            "name": f"Shop {HOSTILE}",
            # A build that prints for a few seconds, so the page sees it in progress.
            "build": {
                "build_command": f"echo '{HOSTILE}'; for i in 1 2 3 4 5 6; do echo step $i; "
                "sleep 1; done"
            },
        },
    )
    assert status == 201, body
    project = body["data"]
    cli_stack.request(
        "PUT",
        f"/v1/projects/{project['id']}/env",
        {
            "vars": {
                "API_TOKEN": {"value": "hunter2-secret", "secret": True},
                "MODE": {"value": "prod"},
            }
        },
    )
    first = deploy(cli_stack, project["id"], "one")
    assert wait_running(cli_stack, project["id"], first["id"])["status"] == "running"
    return project


def controls_without_labels(page) -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll('input, select, button, textarea')]
            .filter((el) => !el.closest('[hidden]'))
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                            && !el.textContent.trim())
            .map((el) => el.outerHTML)"""
    )


def test_sign_in_follow_a_deployment_live_and_roll_back(cli_stack, browser, project):
    SHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    refused = []
    page.on("response", lambda answer: answer.status >= 400 and refused.append(answer.url))
    response = page.goto(cli_stack.url + "/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    icon = page.request.get(cli_stack.url + page.locator("link[rel=icon]").get_attribute("href"))
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")

    # Sign in with the keyboard only: the key field has focus, Enter submits.
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(cli_stack.key)
    page.keyboard.press("Enter")
    link = page.get_by_role("link", name=f"Shop {HOSTILE}")
    expect(link).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('shipyard.apiKey')") == cli_stack.key
    assert cli_stack.key not in page.url
    # The list shows each project's name, URL and status
    row = page.locator("#project-rows tr", has=link)
    expect(row).to_contain_text("http://127.0.0.1:")
    expect(row.locator("td").nth(2)).to_have_text("running")
    assert page.context.cookies() == []
    assert controls_without_labels(page) == []
    assert refused == [], "the page asked for something the API does not have"

    link.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#project-name")).to_have_text(f"Shop {HOSTILE}")
    expect(page.locator("#project-status")).to_have_text("running")
    expect(page.locator("#project-url")).to_contain_text("http://127.0.0.1:")
    env = page.locator("#env-rows")
    expect(env).to_contain_text("API_TOKEN")
    expect(env).to_contain_text("prod")
    assert "hunter2-secret" not in page.content()
    expect(page.locator("#log")).to_contain_text("Health check passed", timeout=30_000)
    assert controls_without_labels(page) == []

    # A new deployment while the page is open: the log switches to it and fills line by line.
    page.evaluate(
        """() => { window.logSeen = [];
            const log = document.getElementById('log');
            new MutationObserver(() => { window.logSeen.push(log.textContent); })
              .observe(log, {childList: true}); }"""
    )
    second = deploy(cli_stack, project["id"], "two")
    title = page.locator("#log-title")
    expect(title).to_have_text(f"Deployment #{second['number']}", timeout=15_000)
    expect(page.locator("#log")).to_contain_text("Health check passed", timeout=60_000)
    expect(page.locator("#log")).to_contain_text("-- running", timeout=30_000)
    seen = page.evaluate("window.logSeen")
    # Lines arrived while it was building: the page showed some build steps before the end.
    assert any("step 1" in text and "Running at" not in text for text in seen)
    assert len({text.count("\n") for text in seen}) >= 3
    log_text = page.locator("#log").inner_text()
    # A status is shown after the lines written before it, not where a response opened
    assert log_text.index("Running at") < log_text.index("-- running"), log_text
    assert "<script>window.pwned = 1</script>" in log_text
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=str(SHOTS / "dashboard-1280.png"), full_page=True)

    # Roll back to the first deployment.
    page.get_by_label("Roll back to").select_option(label="#1 (stopped)")
    page.get_by_role("button", name="Roll back").click()
    expect(page.locator("#action-message")).to_contain_text("Rolled back", timeout=15_000)
    expect(page.locator("#deployment-rows tr").first).to_contain_text("rollback")

    # 390 pixels: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    time.sleep(0.3)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.get_by_role("button", name="Redeploy")).to_be_visible()
    page.screenshot(path=str(SHOTS / "dashboard-390.png"), full_page=True)
    assert page.evaluate("window.pwned") is None
    page.close()


def test_the_live_log_follows_the_build_into_the_runtime_log(cli_stack, browser):
    # Given: a running app that prints a line for each request
    status, _, body = cli_stack.request(
        "POST",
        "/v1/projects",
        {
            "name": "Printer",
            "runtime": "python",
            "run": {"start_command": "python app.py", "health_check_interval_s": 1},
        },
    )
    assert status == 201, body
    project = body["data"]
    archive = targz({"app.py": APP, "requirements.txt": ""})
    first = deploy(cli_stack, project["id"], "one", archive)
    running = wait_running(cli_stack, project["id"], first["id"])
    assert running["status"] == "running", running
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(cli_stack.url + "/")
    page.get_by_label("API key").fill(cli_stack.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Printer")).to_be_visible()
    # When: the page follows the deployment, and the app serves a request
    page.goto(f"{cli_stack.url}/#/projects/{project['id']}")
    log = page.locator("#log")
    expect(log).to_contain_text("-- runtime log", timeout=30_000)
    path = f"/from-the-dashboard-test-{uuid.uuid4().hex[:8]}"
    with urllib.request.urlopen(running["url"] + path, timeout=10) as response:
        assert response.status == 200
    # Then: the line the app printed arrives in the page's live log, after the build log
    expect(log).to_contain_text(f"[app] served {path}", timeout=30_000)
    text = log.inner_text()
    assert text.index("Health check passed") < text.index("-- runtime log")
    assert text.index("-- runtime log") < text.index(f"served {path}")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "dashboard-runtime-log.png"), full_page=True)

    # Redeploy, by keyboard: the page follows the new deployment into its runtime log
    page.get_by_role("button", name="Redeploy").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#action-message")).to_contain_text("Redeployed", timeout=15_000)
    expect(page.locator("#log-title")).to_have_text("Deployment #2", timeout=15_000)
    expect(log).to_contain_text("-- runtime log", timeout=60_000)
    expect(page.locator("#deployment-rows tr").first).to_contain_text("redeploy")
    page.close()


def test_a_wrong_key_is_refused_and_nothing_is_stored(cli_stack, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(cli_stack.url + "/")
    page.get_by_label("API key").fill("sk_live_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_contain_text("Sign in failed")
    assert page.evaluate("sessionStorage.getItem('shipyard.apiKey')") is None
    page.close()
