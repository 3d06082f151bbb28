"""Incoming hooks and git's bad input: GitHub push webhooks (signed with GitHub's own code,
@octokit/webhooks-methods under node), deploy hooks, refs and repositories that are
refused or fail their deployment, credentials that never show, and detect."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.conftest import Api
from tests.git_support import commit, github_signature, make_repo, push_payload
from tests.integration.conftest import deploy_archive, log_lines, wait_for
from tests.pipeline_support import send_to_presigned, targz

SECRET = "the-project-secret-0001"
OTHER_SECRET = "another-projects-secret"


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "web", {"index.html": "<h1>hi</h1>"})


def git_project(api, repository, secret=SECRET, name="Web"):
    body = {"name": name, "git": {"repository": repository, "webhook_secret": secret}}
    created = api.post("/v1/projects", body)
    assert created.status_code == 201, created.json
    return created.json["data"]


def deliver(anonymous, body: bytes, signature: str | None, event="push", delivery="d-1"):
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return anonymous.post("/v1/hooks/github", body, headers=headers)


def payload(repo, sha, ref="refs/heads/main", full_name="acme/web"):
    return json.dumps(push_payload(f"file://{repo}", full_name, ref, sha)).encode()


def test_a_push_is_verified_with_githubs_signature_and_refused_otherwise(
    api, anonymous, repo, make_workspace
):
    project = git_project(api, f"file://{repo}")
    git_project(api, "https://github.com/acme/other.git", OTHER_SECRET, "Other")
    sha = commit(repo, {"index.html": "v2"}, "v2")
    body = payload(repo, sha)
    good = github_signature(SECRET, body)
    unknown = payload(repo.parent / "nobody", sha, full_name="acme/nobody")

    refusals = {
        "missing": deliver(anonymous, body, None),
        "forged": deliver(anonymous, body, "sha256=" + "0" * 64),
        "truncated": deliver(anonymous, body, good[:-6]),
        "not ASCII": deliver(anonymous, body, "sha256=" + "\u00e9" * 64),
        "another project's secret": deliver(anonymous, body, github_signature(OTHER_SECRET, body)),
        "altered after signing": deliver(anonymous, body.replace(b"main", b"mein"), good),
        "unknown repository": deliver(anonymous, unknown, github_signature(SECRET, unknown)),
    }

    for case, answer in refusals.items():
        assert answer.status_code == 401, case
        assert answer.json["error"]["message"] == refusals["missing"].json["error"]["message"]
    deployments = f"/v1/projects/{project['id']}/deployments"
    assert api.get(deployments).json["data"] == []

    ping = deliver(anonymous, body, good, event="ping", delivery="p-1")
    assert (ping.status_code, ping.json["data"]["status"]) == (200, "pong")
    ignored = deliver(anonymous, body, good, event="issues", delivery="i-1")
    assert (ignored.status_code, ignored.json["data"]["status"]) == (202, "ignored")

    first = deliver(anonymous, body, good, delivery="d-1")
    replayed = deliver(anonymous, body, good, delivery="d-1")

    assert first.status_code == 202, first.json
    [made] = first.json["data"]["deployments"]
    assert (made["source"]["sha"], made["source"]["trigger"]) == (sha, "github")
    assert made["source"]["message"] == "Pushed commit"
    assert (replayed.status_code, replayed.json["data"]["status"]) == (202, "duplicate")
    assert [d["id"] for d in api.get(deployments).json["data"]] == [made["id"]]
    # A second delivery of the same commit within the minute: the same single flight.
    again = deliver(anonymous, body, good, delivery="d-2")
    assert [d["id"] for d in again.json["data"]["deployments"]] == [made["id"]]


def test_a_delivery_refused_before_it_deployed_can_be_redelivered(api, anonymous, repo):
    from chalicelib.core.errors import QuotaExceeded
    from chalicelib.limits import quotas

    project = git_project(api, f"file://{repo}")
    with pytest.raises(QuotaExceeded):
        for _ in range(100):
            quotas.reserve_deployment(project["workspace_id"], "free")
    sha = commit(repo, {"index.html": "v2"}, "v2")
    body = payload(repo, sha)
    signature = github_signature(SECRET, body)

    refused = deliver(anonymous, body, signature, delivery="q-1")
    redelivered = deliver(anonymous, body, signature, delivery="q-1")

    assert (refused.status_code, refused.json["error"]["code"]) == (429, "quota_exceeded")
    # GitHub's "Redeliver" is tried again, not taken for a duplicate of what never happened.
    assert redelivered.status_code == 429, redelivered.json
    assert redelivered.json["error"]["code"] == "quota_exceeded"
    # A preview counts against the daily deployments like any deployment.
    feature = payload(repo, sha, ref="refs/heads/feature")
    preview = deliver(anonymous, feature, github_signature(SECRET, feature), delivery="q-2")
    assert (preview.status_code, preview.json["error"]["code"]) == (429, "quota_exceeded")
    assert api.get(f"/v1/projects/{project['id']}/deployments").json["data"] == []


def test_a_push_of_five_megabytes_is_413(anonymous, api, repo):
    git_project(api, f"file://{repo}")
    body = b'{"pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'

    answer = deliver(anonymous, body, github_signature(SECRET, b"{}"))

    assert answer.status_code == 413
    assert answer.json["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "ref",
    [
        "--upload-pack=touch /tmp/pwned",
        "-c",
        "main;touch /tmp/pwned",
        "$(touch /tmp/pwned)",
        "a..b",
        "../../etc/passwd",
        "/etc/passwd",
        "main`id`",
        "feature branch",
    ],
)
def test_a_ref_that_is_an_option_a_path_or_shell_is_refused(api, repo, ref):
    project = git_project(api, f"file://{repo}")

    answer = api.post(f"/v1/projects/{project['id']}/deployments", {"git": {"ref": ref}})

    assert answer.status_code == 422, answer.json
    assert "git.ref" in answer.json["error"]["details"]["fields"]


@pytest.mark.parametrize("branch", ["x;touch {marker}", "$(touch {marker})", "a..b", "-c"])
def test_a_pushed_branch_that_is_shell_an_option_or_dotdot_deploys_nothing(
    api, anonymous, repo, tmp_path, branch
):
    project = git_project(api, f"file://{repo}")
    marker = tmp_path / "pwned"
    sha = commit(repo, {"index.html": "v2"}, "v2")
    body = payload(repo, sha, ref="refs/heads/" + branch.format(marker=marker))

    answer = deliver(anonymous, body, github_signature(SECRET, body))

    assert answer.status_code == 202, answer.json
    assert answer.json["data"]["deployments"] == []
    assert answer.json["data"]["status"] == "ignored"
    assert api.get(f"/v1/projects/{project['id']}/deployments").json["data"] == []
    assert not marker.exists()


def test_refs_and_repositories_that_fail_their_deployment_say_which(
    client, make_workspace, repo, tmp_path, pump
):
    api = Api(client, make_workspace("Many", "pro")[1])
    missing_sha = "1234567890" * 4
    cases = {
        "no such branch": (f"file://{repo}", "nope", "has no branch or tag named 'nope'"),
        "no such commit": (f"file://{repo}", missing_sha, "The clone failed: could not fetch"),
        "unreachable": (f"file://{tmp_path}/absent", "main", "could not be read"),
        "not loopback": (
            "https://robot:hunter2secret@192.0.2.1/acme/web.git",
            "main",
            "confined to loopback",
        ),
    }
    for number, (case, (repository, ref, reason)) in enumerate(cases.items()):
        project = git_project(api, repository, name=f"P{number}")
        created = api.post(f"/v1/projects/{project['id']}/deployments", {"git": {"ref": ref}})
        assert created.status_code == 202, (case, created.json)
        failed = wait_for(api, created.json["data"], ("failed", "running"))
        assert (failed["status"], failed["error_code"]) == ("failed", "build_failed"), case
        assert reason in failed["error_message"], (case, failed["error_message"])
        lines = [line["message"] for line in log_lines(api, failed)]
        assert any(reason in line for line in lines), (case, lines)
        seen = json.dumps([failed, lines, api.get(f"/v1/projects/{project['id']}").json])
        assert "hunter2secret" not in seen
    shown = api.get(f"/v1/projects/{project['id']}").json["data"]["git"]["repository"]
    assert shown == "https://***@192.0.2.1/acme/web.git"


def test_remotes_obey_the_outbound_rules_of_webhooks(client, make_workspace, monkeypatch, pump):
    # As on AWS: not confined to loopback, private targets not allowed. Each host is an
    # address literal refused before any connection, so nothing leaves this machine.
    from chalicelib.core.settings import get_settings

    monkeypatch.delenv("SHIPYARD_OUTBOUND_LOOPBACK_ONLY", raising=False)
    monkeypatch.setenv("SHIPYARD_ALLOW_PRIVATE_TARGETS", "false")
    get_settings.cache_clear()
    api = Api(client, make_workspace("Outbound", "pro")[1])
    cases = {
        "metadata": ("https://169.254.169.254/acme/web.git", "a cloud metadata address"),
        "private": ("https://10.1.2.3/acme/web.git", "a private address"),
        "loopback": ("https://127.0.0.1:9/acme/web.git", "a loopback address"),
    }
    for number, (case, (repository, reason)) in enumerate(cases.items()):
        project = git_project(api, repository, name=f"O{number}")
        deploying = f"/v1/projects/{project['id']}/deployments"
        created = api.post(deploying, {"git": {"ref": "main"}})
        assert created.status_code == 202, (case, created.json)
        failed = wait_for(api, created.json["data"], ("failed", "running"))
        assert (failed["status"], failed["error_code"]) == ("failed", "build_failed"), case
        assert reason in failed["error_message"], (case, failed["error_message"])
    # An operator who allows private targets reaches them; metadata stays refused.
    monkeypatch.setenv("SHIPYARD_ALLOW_PRIVATE_TARGETS", "true")
    get_settings.cache_clear()
    from chalicelib.git.remote import Unreachable, check_outbound

    assert check_outbound("https://10.1.2.3/acme/web.git") == ["10.1.2.3"]
    with pytest.raises(Unreachable, match="metadata"):
        check_outbound("https://169.254.169.254/acme/web.git")


def _connections_to_a_listener() -> tuple[int, list, threading.Thread]:
    """A TCP listener on loopback that notes each connection and closes it at once."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(15)
    seen: list = []

    def accept() -> None:
        try:
            connection, _ = listener.accept()
            seen.append(connection.getpeername())
            connection.close()
        except OSError:
            pass
        finally:
            listener.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return listener.getsockname()[1], seen, thread


def test_git_connects_to_the_checked_address_not_to_a_second_lookup(monkeypatch, tmp_path):
    # A name that does not resolve at all: git reaches the listener only through the pin.
    import subprocess

    from chalicelib.builders import git as local_git
    from chalicelib.builders.codebuild import CLONE_STEPS
    from chalicelib.git.remote import git_env, pin

    port, seen, thread = _connections_to_a_listener()
    url = f"https://pinned.invalid:{port}/acme/web.git"
    assert pin(url, ["127.0.0.1", "::1"]) == f"pinned.invalid:{port}:127.0.0.1,[::1]"
    assert pin(f"https://127.0.0.1:{port}/a.git", ["127.0.0.1"]) == ""  # nothing to look up
    assert pin("file:///srv/a.git", None) == ""
    monkeypatch.setattr(local_git, "check_outbound", lambda _url: ["127.0.0.1"])
    with pytest.raises(local_git.CloneFailed):  # no git server there: the fetch fails
        local_git.checkout(
            url, "0" * 40, tmp_path / "out", time.monotonic() + 20, threading.Event()
        )
    thread.join(15)
    assert seen, "the local clone did not connect to the pinned address"

    # The clone build on AWS: its ls-remote step, as CodeBuild's bash runs it.
    port, seen, thread = _connections_to_a_listener()
    url = f"https://pinned.invalid:{port}/acme/web.git"
    [ls_remote] = [command for name, command, _ in CLONE_STEPS if name == "ls-remote"]
    env = {
        **git_env(str(tmp_path)),
        "SHIPYARD_GIT_URL": url,
        "SHIPYARD_GIT_RESOLVE": pin(url, ["127.0.0.1"]),
    }
    subprocess.run(["bash", "-c", ls_remote], env=env, timeout=30, check=False, cwd=tmp_path)
    thread.join(15)
    assert seen, "the clone build's git did not connect to the pinned address"


def test_repositories_are_github_names_or_clone_urls(api):
    for bad in ("ftp://host/x.git", "file:relative", "owner", "ssh://git@github.com/a/b"):
        answer = api.post("/v1/projects", {"name": "X", "git": {"repository": bad}})
        assert answer.status_code == 422, bad
    ok = api.post("/v1/projects", {"name": "Y", "git": {"repository": "acme/web"}})
    assert ok.json["data"]["git"] == {"repository": "acme/web", "branch": "main"}


def test_a_clone_past_its_deadline_is_timed_out(repo, tmp_path):
    from chalicelib.builders.git import CloneFailed, checkout

    sha = commit(repo, {"index.html": "v3"}, "v3")
    with pytest.raises(CloneFailed) as raised:
        checkout(f"file://{repo}", sha, tmp_path / "out", time.monotonic() - 1, threading.Event())
    assert raised.value.code == "timed_out"

    done = checkout(
        f"file://{repo}", sha, tmp_path / "ok", time.monotonic() + 30, threading.Event()
    )
    assert (done.sha, done.message) == (sha, "v3")
    assert (tmp_path / "ok" / "index.html").read_text() == "v3"
    assert not (tmp_path / "ok" / ".git").exists()


def test_one_commit_asked_for_across_the_end_of_a_clock_minute_is_one_flight(
    api, repo, monkeypatch
):
    import types

    from chalicelib.pipeline import actions

    project = git_project(api, f"file://{repo}")
    # The two asks on either side of a minute's end (if anything reads the clock for it).
    boundary = (int(time.time()) // 60 + 1) * 60
    times = [boundary - 0.5, boundary + 0.5]
    clock = types.SimpleNamespace(
        time=lambda: times.pop(0) if len(times) > 1 else times[0],
        monotonic=time.monotonic,
        sleep=time.sleep,
    )
    monkeypatch.setattr(actions, "time", clock)
    path = f"/v1/projects/{project['id']}/deployments"

    first = api.post(path, {"git": {"ref": "main"}})
    second = api.post(path, {"git": {"ref": "main"}})

    assert (first.status_code, second.status_code) == (202, 202), second.json
    assert second.json["data"]["id"] == first.json["data"]["id"], "one commit, one flight"
    assert len(api.get(path).json["data"]) == 1


def test_an_older_preview_that_finishes_after_a_newer_one_never_replaces_it(api, repo):
    from chalicelib.deployments import service as deployments
    from chalicelib.pipeline import workflow
    from chalicelib.store import deployments as store

    project = git_project(api, f"file://{repo}")
    path = f"/v1/projects/{project['id']}/deployments"
    made = []
    for version in ("1", "2"):
        commit(repo, {"index.html": version}, f"Feature {version}", branch="feature")
        made.append(api.post(path, {"git": {"ref": "feature"}}).json["data"])
    assert [d["environment"] for d in made] == ["preview", "preview"]
    for deployment in made:
        item = store.get(project["id"], deployment["id"])
        for status in ("building", "built", "deploying"):
            item = deployments.move(item, status, status)
    older, newer = (store.get(project["id"], d["id"]) for d in made)

    # The newer push's preview becomes running first; the older one's step comes after.
    assert workflow.promote(newer, {}) == {"promoted": False}
    with pytest.raises(workflow.StepFailed):
        workflow.promote(older, {})

    statuses = {d["id"]: d["status"] for d in api.get(path + "?environment=preview").json["data"]}
    assert statuses == {made[1]["id"]: "running", made[0]["id"]: "canceled"}


def test_deploy_hooks_deploy_with_their_secret_url_alone(api, anonymous, repo, make_workspace):
    from chalicelib.core.errors import QuotaExceeded
    from chalicelib.limits import quotas

    project = git_project(api, f"file://{repo}")
    hooks = f"/v1/projects/{project['id']}/deploy-hooks"
    created = api.post(hooks, {"name": "CI"})
    assert created.status_code == 201, created.json
    hook = created.json["data"]
    token_path = hook["url"].split("127.0.0.1:8000", 1)[1]
    assert token_path.startswith("/v1/hooks/deploy/dh_") and hook["id"].startswith("hook_")
    listed = api.get(hooks).json["data"]
    assert [(h["id"], "url" in h) for h in listed] == [(hook["id"], False)]
    from chalicelib.store import hooks as hook_store

    stored = hook_store.hook_of_project(project["id"], hook["id"])
    assert token_path.rsplit("/", 1)[1] not in json.dumps(stored)

    called = anonymous.post(token_path)
    assert called.status_code == 202, called.json
    assert called.json["data"]["source"]["trigger"] == "deploy_hook"
    assert called.json["data"]["source"]["branch"] == "main"
    again = anonymous.post(token_path)
    assert again.json["data"]["id"] == called.json["data"]["id"], "one commit, one flight"
    assert anonymous.post("/v1/hooks/deploy/dh_unknown").status_code == 404

    _, other_key = make_workspace("Other")
    assert api.delete(f"{hooks}/{hook['id']}", key=other_key).status_code == 404
    assert api.delete(f"{hooks}/{hook['id']}").status_code == 204
    assert anonymous.post(token_path).status_code == 404

    # A hook's ref obeys a deployment's ref rules: an option, a path or shell is refused.
    for ref in ("--upload-pack=touch /tmp/pwned", "../x", "main;id", "main.lock"):
        refused = api.post(hooks, {"name": "Bad", "ref": ref})
        assert refused.status_code == 422, (ref, refused.json)
        assert "ref" in refused.json["error"]["details"]["fields"], ref
    assert [h["name"] for h in api.get(hooks).json["data"]] == []

    # A second hook counts against the workspace's daily deployments.
    second = api.post(hooks, {"name": "CI 2", "ref": "main"}).json["data"]
    second_path = second["url"].split("127.0.0.1:8000", 1)[1]
    workspace_id = project["workspace_id"]
    with pytest.raises(QuotaExceeded):
        for _ in range(100):
            quotas.reserve_deployment(workspace_id, "free")
    commit(repo, {"index.html": "new"}, "A commit no flight has made yet")
    refused = anonymous.post(second_path)
    assert (refused.status_code, refused.json["error"]["code"]) == (429, "quota_exceeded")

    assert api.delete(f"/v1/projects/{project['id']}").status_code == 204
    assert anonymous.post(second_path).status_code == 404


def test_a_deploy_hook_of_a_project_without_git_rebuilds_its_latest_upload(api, anonymous):
    project = api.post("/v1/projects", {"name": "Site"}).json["data"]
    hook = api.post(f"/v1/projects/{project['id']}/deploy-hooks", {"name": "CI"}).json["data"]
    path = hook["url"].split("127.0.0.1:8000", 1)[1]
    # Rate-limited per hook: ten calls a minute, no burst; then 429 with Retry-After.
    answers = [anonymous.post(path) for _ in range(11)]
    assert [a.status_code for a in answers[:10]] == [409] * 10
    assert answers[10].status_code == 429
    assert int(answers[10].headers["Retry-After"]) >= 1
    other = api.post(f"/v1/projects/{project['id']}/deploy-hooks", {"name": "CI 2"}).json["data"]
    path = other["url"].split("127.0.0.1:8000", 1)[1]

    first = deploy_archive(api, project["id"], targz({"index.html": "x"}))
    rebuilt = anonymous.post(path)

    assert rebuilt.status_code == 202, rebuilt.json
    assert rebuilt.json["data"]["number"] == first["number"] + 1
    assert rebuilt.json["data"]["source"]["type"] == "upload"


def test_detect_answers_the_build_plan_of_an_upload_or_a_git_ref(api, tmp_path, make_workspace):
    project = api.post("/v1/projects", {"name": "D"}).json["data"]
    archive = targz({"app/requirements.txt": "flask\n", "app/app.py": "import flask\n"})
    upload = api.post(f"/v1/projects/{project['id']}/uploads", {}).json["data"]
    assert send_to_presigned(upload, archive) in (200, 201, 204)

    found = api.post("/v1/projects/detect", {"upload_id": upload["id"]})

    assert found.status_code == 200, found.json
    plan = found.json["data"]
    assert (plan["runtime"], plan["framework"], plan["runs_server"]) == ("python", "flask", True)
    assert plan["evidence"] == ["app/requirements.txt", "app/app.py"]
    assert plan["confidence"] == 0.95
    _, other_key = make_workspace("Other")
    hidden = api.post("/v1/projects/detect", {"upload_id": upload["id"]}, key=other_key)
    assert hidden.status_code == 404

    repo = make_repo(tmp_path / "site", {"web/index.html": "<p>", "README.md": "x"})
    body = {"git": {"repository": f"file://{repo}", "ref": "main"}, "root_directory": "web"}
    static = api.post("/v1/projects/detect", body).json["data"]
    assert (static["runtime"], static["runs_server"]) == ("static", False)
    assert static["evidence"] == ["web/index.html"]
    missing = api.post("/v1/projects/detect", {"git": {"repository": f"file://{repo}", "ref": "x"}})
    assert missing.status_code == 404 and "'x'" in missing.json["error"]["message"]
    elsewhere = {"repository": "acme/web", "ref": "main"}  # not on loopback: not reachable
    assert api.post("/v1/projects/detect", {"git": elsewhere}).status_code == 404
