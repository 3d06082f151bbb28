"""The CLI's commands beyond `deploy`, run as a subprocess against the real local stack:
credentials (login's 0600 file, the local stack's key, SHIPYARD_API_KEY winning), link,
status, logs, redeploy, promote/rollback, cancel, env pull, keys, webhooks, files, open, and
`--json` on every command."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import stat
import subprocess
import sys
import tarfile

import pytest

from tests.e2e.cli import EXAMPLES, run_cli
from tests.e2e.conftest import ROOT
from tests.waiting import eventually
from tests.webhook_support import Receiver, Reply

BAD_KEY = "sk_live_" + "x" * 38


def cli_json(stack, *args, env=None):
    result = run_cli(stack, *args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def home(tmp_path):
    """A user's config directory, and no SHIPYARD_API_KEY."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "SHIPYARD_API_KEY": ""}


def test_login_keeps_a_0600_config_and_the_environment_key_wins(cli_stack, home, tmp_path):
    # When: the key comes from the local stack's state directory
    env = {**home, "SHIPYARD_STATE_DIR": str(cli_stack.state_dir)}
    login = run_cli(None, "--url", cli_stack.url, "login", "--json", env=env)
    # Then
    assert login.returncode == 0, login.stderr
    saved = tmp_path / "config" / "shipyard" / "config.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text()) == {"url": cli_stack.url, "api_key": cli_stack.key}
    # Later commands need neither the URL nor the key
    listed = run_cli(None, "projects", "list", "--json", env={**home, "SHIPYARD_STATE_DIR": "/x"})
    assert listed.returncode == 0, listed.stderr
    # SHIPYARD_API_KEY still wins over the login
    env_key = run_cli(None, "projects", "list", env={**home, "SHIPYARD_API_KEY": BAD_KEY})
    assert env_key.returncode == 1 and "(unauthorized)" in env_key.stderr
    logout = run_cli(None, "logout", env=home)
    assert logout.returncode == 0 and not saved.exists()


def test_link_deploy_status_logs_redeploy_promote_and_rollback(cli_stack, tmp_path):
    # Given: a directory linked to a new project
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>linked</p>")
    link = run_cli(cli_stack, "link", "cli-linked", "--create", "-C", str(site))
    assert link.returncode == 0, link.stderr
    linked = json.loads((site / ".shipyard" / "project.json").read_text())
    # When: commands run from inside it, with no --project
    first = cli_json_in(cli_stack, site, "deploy")
    # The supervisor records the app's runtime at its first look (every second).
    status = eventually(
        lambda: (
            ((seen := cli_json_in(cli_stack, site, "status"))["running"] or {}).get("runtime")
            and seen
        ),
        what="the running deployment's runtime in status",
    )
    logs = run_in(cli_stack, site, "logs", "--json")
    runtime = run_in(cli_stack, site, "logs", first["id"], "--runtime", "--json")
    redeployed = cli_json_in(cli_stack, site, "redeploy")
    rolled = cli_json_in(cli_stack, site, "rollback")
    promoted = cli_json_in(cli_stack, site, "promote", redeployed["id"])
    canceled = run_in(cli_stack, site, "cancel", promoted["id"])
    # Then
    assert first["status"] == "running" and first["project_id"] == linked["project_id"]
    assert status["project"]["id"] == linked["project_id"]
    assert status["deployment"]["id"] == first["id"]
    assert status["running"]["id"] == first["id"]
    assert status["running"]["runtime"]["state"] == "up"
    lines = [json.loads(line) for line in logs.stdout.splitlines()]
    assert any("Health check passed" in line["message"] for line in lines)
    # --runtime: what the running app printed (the static server's own lines)
    assert runtime.returncode == 0, runtime.stderr
    runtime_lines = [json.loads(line) for line in runtime.stdout.splitlines()]
    assert any(line["phase"] == "app" for line in runtime_lines), runtime.stdout
    assert redeployed["source"]["type"] == "redeploy" and redeployed["status"] == "running"
    assert rolled["source"]["type"] == "rollback"
    assert rolled["source"]["deployment_id"] == first["id"]
    assert promoted["source"]["deployment_id"] == redeployed["id"]
    assert canceled.returncode == 1 and "(invalid_state)" in canceled.stderr


def cli_json_in(stack, directory, *args):
    result = run_in(stack, directory, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def run_in(stack, directory, *args):
    """The CLI run with `directory` as its working directory."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHIPYARD_"))}
    environment.update(SHIPYARD_URL=stack.url, SHIPYARD_API_KEY=stack.key, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "shipyard_cli", *args],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_env_pull_never_writes_a_secret(cli_stack, tmp_path):
    project = cli_json(cli_stack, "projects", "create", "Env pull")
    pid = project["id"]
    assert (
        run_cli(cli_stack, "env", "set", "-p", pid, "TOKEN=hunter2-x", "--secret").returncode == 0
    )
    assert (
        run_cli(cli_stack, "env", "set", "-p", pid, "MODE=prod", 'GREETING=hi "you"').returncode
        == 0
    )
    # set and unset print their result with --json, as every command does
    unset = cli_json(cli_stack, "env", "unset", "-p", pid, "GREETING")
    assert unset == {"removed": ["GREETING"]}
    again = cli_json(cli_stack, "env", "set", "-p", pid, 'GREETING=hi "you"')
    assert again["vars"]["GREETING"]["value"] == 'hi "you"'
    assert again["vars"]["TOKEN"] == {**again["vars"]["TOKEN"], "secret": True, "value": None}
    listed = cli_json(cli_stack, "env", "list", "-p", pid)
    assert set(listed["vars"]) == {"TOKEN", "MODE", "GREETING"}
    target = tmp_path / ".env"
    pulled = cli_json(cli_stack, "env", "pull", "-p", pid, "-o", str(target))
    text = target.read_text()
    assert "hunter2" not in text
    assert "MODE=prod" in text and 'GREETING="hi \\"you\\""' in text
    assert "# TOKEN is a secret" in text
    assert pulled["secrets"] == ["TOKEN"]


def test_keys_create_list_revoke(cli_stack):
    created = cli_json(cli_stack, "keys", "create", "ci", "--scope", "projects:read")
    assert created["key"].startswith("sk_live_") and created["scopes"] == ["projects:read"]
    assert created["id"] in {k["id"] for k in cli_json(cli_stack, "keys", "list")}
    assert run_cli(cli_stack, "keys", "revoke", created["id"]).returncode == 0
    refused = run_cli(cli_stack, "projects", "list", env={"SHIPYARD_API_KEY": created["key"]})
    assert refused.returncode == 1 and "(unauthorized)" in refused.stderr


def test_webhooks_create_list_test_deliveries_and_delete(cli_stack):
    # Given: a receiver on this machine (the local stack allows http://127.0.0.1), whose
    # first answer fails
    receiver = Receiver(lambda n: Reply(status=500 if n == 1 else 200))
    try:
        # When: its URL is the positional argument, not the API's --url
        created = cli_json(cli_stack, "webhooks", "create", receiver.url, "--event", "deploy.*")
        hook = created["id"]
        listed = cli_json(cli_stack, "webhooks", "list")
        failed = run_cli(cli_stack, "webhooks", "test", hook)
        passed = cli_json(cli_stack, "webhooks", "test", hook)
        deliveries = cli_json(cli_stack, "webhooks", "deliveries", hook)
        deleted = run_cli(cli_stack, "webhooks", "delete", hook)
        # Then
        assert created["url"] == receiver.url and created["secret"].startswith("whsec_")
        assert created["events"] == ["deploy.*"]
        assert hook in {h["id"] for h in listed}
        assert failed.returncode == 1 and "the test delivery failed" in failed.stderr
        assert passed["success"] is True
        assert len(receiver.hits) == 2 and all(h.path == "/hook" for h in receiver.hits)
        assert isinstance(deliveries, list)
        assert deleted.returncode == 0, deleted.stderr
        assert hook not in {h["id"] for h in cli_json(cli_stack, "webhooks", "list")}
    finally:
        receiver.close()


def test_files_list_get_and_artifact(cli_stack, tmp_path):
    deployed = run_cli(
        cli_stack, "deploy", str(EXAMPLES / "static-site"), "-p", "cli-files", "--create", "--json"
    )
    assert deployed.returncode == 0, deployed.stderr
    deployment = json.loads(deployed.stdout)
    listed = cli_json(cli_stack, "files", "list", deployment["id"], "-p", "cli-files")
    paths = {f["path"] for f in listed if f["type"] == "file"}
    assert "index.html" in paths
    one = run_cli(cli_stack, "files", "get", deployment["id"], "index.html", "-p", "cli-files")
    assert one.returncode == 0 and "<" in one.stdout
    # With --json, the file comes as JSON (a script reads one format), its bytes intact.
    as_json = cli_json(cli_stack, "files", "get", deployment["id"], "index.html", "-p", "cli-files")
    assert as_json["path"] == "index.html"
    assert base64.b64decode(as_json["content_base64"]).decode() == one.stdout
    assert as_json["bytes"] == len(one.stdout.encode())
    escaped = run_cli(
        cli_stack, "files", "get", deployment["id"], "../etc/passwd", "-p", "cli-files"
    )
    assert escaped.returncode == 1 and "(bad_request)" in escaped.stderr
    target = tmp_path / "artifact.tar.gz"
    got = run_cli(cli_stack, "files", "get", deployment["id"], "-p", "cli-files", "-o", str(target))
    assert got.returncode == 0, got.stderr
    with tarfile.open(fileobj=io.BytesIO(target.read_bytes())) as tar:
        assert any(m.name.endswith("index.html") for m in tar.getmembers())
    opened = cli_json(cli_stack, "open", "-p", "cli-files", "--print")
    assert opened["url"].startswith("http://127.0.0.1:")


def test_every_command_takes_json_and_help_lists_them(cli_stack):
    shown = run_cli(None, "--help").stdout
    for name in (
        "login",
        "link",
        "deploy",
        "status",
        "open",
        "cancel",
        "redeploy",
        "promote",
        "rollback",
        "logs",
        "env",
        "keys",
        "webhooks",
        "files",
    ):
        assert re.search(rf"^\s+{name}\s", shown, re.MULTILINE), name
    for command in (
        ["status"],
        ["open"],
        ["cancel"],
        ["logs"],
        ["env", "pull"],
        ["keys", "list"],
        ["webhooks", "list"],
        ["files", "list"],
        ["deploy"],
        ["promote"],
        ["login"],
    ):
        assert "--json" in run_cli(None, *command, "--help").stdout, command
    logs_help = run_cli(None, "logs", "--help").stdout
    assert "--runtime" in logs_help and "--follow" in logs_help
