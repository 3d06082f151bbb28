"""The CLI against the real local stack: it deploys the examples to URLs that answer,
rolls back to the version before, and reports failures as the contract's errors."""

from __future__ import annotations

import shutil
import uuid

from tests.e2e.cli import (
    EXAMPLES,
    deployment_id,
    deployments,
    fetch,
    fetch_until,
    run_cli,
    succeeded,
)
from tests.e2e.conftest import free_port


def slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_static_site_deploys_and_a_rollback_brings_the_old_page_back(cli_stack, tmp_path):
    # Given: a copy of the static example, deployed to a project the CLI creates
    site = tmp_path / "site"
    shutil.copytree(EXAMPLES / "static-site", site)
    project = slug("site")
    first = run_cli(cli_stack, "deploy", str(site), "--project", project, "--create")
    first_url = succeeded(first)
    first_id = deployment_id(first)
    assert "It ships." in fetch_until(first_url, "It ships.")
    assert f"Created project {project}" in first.stderr
    assert "Packed " in first.stderr and "Uploaded upl_" in first.stderr
    assert "status | running" in first.stderr

    # When: a changed page is deployed
    index = site / "index.html"
    index.write_text(index.read_text().replace("It ships.", "It ships, version two."))
    second = run_cli(cli_stack, "deploy", str(site), "--project", project, "--note", "v2")
    second_page = fetch_until(succeeded(second), "version two")

    # Then: a rollback to the first deployment serves the first page again
    rollback = run_cli(cli_stack, "rollback", "--project", project, "--to", first_id)
    rolled_back_url = succeeded(rollback)
    page = fetch_until(rolled_back_url, "It ships.")
    assert "version two" not in page and "version two" in second_page
    listed = deployments(cli_stack, project)
    assert [d["status"] for d in listed] == ["running", "stopped", "stopped"]
    assert listed[0]["id"] == deployment_id(rollback)
    assert listed[0]["source"]["type"] == "rollback"
    assert listed[1]["note"] == "v2"
    status, _, current = cli_stack.request("GET", f"/v1/projects/{listed[0]['project_id']}")
    assert status == 200 and current["data"]["current_deployment_id"] == listed[0]["id"]


def test_python_app_deploys_with_its_env_and_rolls_back_to_the_old_env(cli_stack):
    # Given: the Python example, deployed with APP_VERSION=one, then with APP_VERSION=two
    project = slug("py")
    created = run_cli(cli_stack, "projects", "create", "Python example", "--slug", project)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().startswith("prj_")
    app = str(EXAMPLES / "python-app")
    set_one = run_cli(cli_stack, "env", "set", "APP_VERSION=one", "--project", project)
    assert set_one.returncode == 0, set_one.stderr
    first = run_cli(cli_stack, "deploy", app, "--project", project)
    first_url = succeeded(first)
    fetch_until(first_url, '<code id="version">one</code>')
    assert fetch(first_url + "/health")[0] == 200

    run_cli(cli_stack, "env", "set", "APP_VERSION=two", "--project", project)
    second_url = succeeded(run_cli(cli_stack, "deploy", app, "--project", project))
    fetch_until(second_url, '<code id="version">two</code>')

    # When
    rollback = run_cli(cli_stack, "rollback", "--project", project, "--to", deployment_id(first))

    # Then: the old code runs with the env it was deployed with; the project's env is as set
    fetch_until(succeeded(rollback), '<code id="version">one</code>')
    listed = run_cli(cli_stack, "env", "list", "--project", project)
    assert listed.stdout.split() == ["KEY", "VALUE", "APP_VERSION", "two"]


def test_a_failing_build_exits_non_zero_with_its_error_and_output(cli_stack, tmp_path):
    # Given: a project whose build command fails
    project = slug("broken")
    status, _, _ = cli_stack.request(
        "POST",
        "/v1/projects",
        {
            "name": project,
            "slug": project,
            "runtime": "static",
            "build": {"build_command": "echo compiling; echo 'boom: no such thing' >&2; exit 3"},
        },
    )
    assert status == 201
    (tmp_path / "index.html").write_text("<h1>never served</h1>")

    # When
    result = run_cli(cli_stack, "deploy", str(tmp_path), "--project", project)

    # Then
    assert result.returncode == 1
    assert "boom: no such thing" in result.stderr
    assert "(build_failed)" in result.stderr.splitlines()[-1]
    assert result.stdout == ""


def test_logs_prints_the_whole_log_as_the_api_has_it(cli_stack):
    # Given: a finished deployment
    project = slug("logs")
    deployed = run_cli(
        cli_stack, "deploy", str(EXAMPLES / "static-site"), "--project", project, "--create"
    )
    succeeded(deployed)
    dep = deployment_id(deployed)

    # When
    printed = run_cli(cli_stack, "logs", dep, "--project", project)
    followed = run_cli(cli_stack, "logs", dep, "--project", project, "--follow")

    # Then: both print the log as the API has it (the running app may add its own output
    # to it at any time, so what one printed may end before what the other did)
    project_id = deployments(cli_stack, project)[0]["project_id"]
    status, _, log = cli_stack.request(
        "GET", f"/v1/projects/{project_id}/deployments/{dep}/logs?limit=1000"
    )
    assert status == 200
    expected = [f"[{line['phase']}] {line['message']}" for line in log["data"]]
    assert printed.returncode == 0, printed.stderr
    assert followed.returncode == 0, followed.stderr
    for shown in (printed.stdout.splitlines(), followed.stdout.splitlines()):
        assert shown == expected[: len(shown)]
        assert "[system] Running at " in "\n".join(shown)
    assert f"{dep} is running" in followed.stderr


def test_errors_are_shown_with_their_code_and_a_hint(cli_stack):
    unknown = run_cli(cli_stack, "deploy", str(EXAMPLES / "static-site"), "--project", "nope-x")
    assert unknown.returncode == 1
    assert "error: no project has the slug 'nope-x' (not_found)" in unknown.stderr
    assert "--create" in unknown.stderr

    bad_key = run_cli(
        cli_stack, "projects", "list", env={"SHIPYARD_API_KEY": "sk_live_" + "x" * 38}
    )
    assert bad_key.returncode == 1
    assert "(unauthorized)" in bad_key.stderr
    assert "hint: check SHIPYARD_API_KEY" in bad_key.stderr

    refused = run_cli(
        None,
        "projects",
        "list",
        env={"SHIPYARD_URL": f"http://127.0.0.1:{free_port()}", "SHIPYARD_API_KEY": "sk_live_x"},
    )
    assert refused.returncode == 1
    assert "connection refused (connection_refused)" in refused.stderr
    assert "make run" in refused.stderr
