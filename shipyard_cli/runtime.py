"""What runs: `shipyard open` (the project's stable URL), `shipyard status` (that URL, the
running deployment and its runtime state) and `shipyard logs --runtime` (the app's own
output and the supervisor's lines, followed with -f). Each is a small function of its own,
registered by cli.py."""

from __future__ import annotations

import webbrowser
from collections.abc import Callable
from typing import Any

from shipyard_cli.api import ApiError, Client
from shipyard_cli.follow import Follower, LogLine
from shipyard_cli.output import Output


class RuntimeFollower(Follower):
    """The build log's follower, on the runtime log: the same frames and reconnects."""

    @property
    def path(self) -> str:
        return f"/v1/projects/{self.project_id}/deployments/{self.deployment_id}/runtime-logs"


def running_deployment(client: Client, project: dict[str, Any]) -> dict[str, Any] | None:
    current = project.get("current_deployment_id")
    if not current:
        return None
    return client.get(f"/v1/projects/{project['id']}/deployments/{current}")["data"]


def open_project(out: Output, project: dict[str, Any], browser: bool) -> None:
    if not project.get("url"):
        raise ApiError(
            "the project has no URL yet", "no_url", hint="deploy it first: shipyard deploy"
        )
    out.result(project["url"])
    if browser:
        webbrowser.open(project["url"])


def show_status(client: Client, out: Output, project: dict[str, Any]) -> None:
    deployment = running_deployment(client, project)
    out.result(f"project:    {project['slug']} ({project['id']}), {project['status']}")
    out.result(f"url:        {project.get('url') or '-'}")
    if deployment is None:
        out.result("deployment: none running")
        return
    out.result(f"deployment: {deployment['id']} (#{deployment['number']}), {deployment['status']}")
    runtime = deployment.get("runtime")
    if runtime:
        restarted = runtime.get("last_restart_at") or "never"
        out.result(
            f"runtime:    {runtime['state']}, {runtime['restarts']} restarts "
            f"(last {restarted}, last exit code {runtime.get('last_exit_code')})"
        )


def runtime_logs(
    client: Client,
    out: Output,
    project: dict[str, Any],
    deployment_id: str | None,
    follow: bool,
    show: Callable[[LogLine], None],
) -> None:
    if deployment_id is None:
        running = running_deployment(client, project)
        if running is None:
            raise ApiError("no deployment of the project is running", "usage")
        deployment_id = running["id"]
    follower = RuntimeFollower(client, project["id"], deployment_id, show, out.status)
    if follow:
        follower.follow()
        return
    path = follower.path
    after = None
    while True:
        page = client.get(path, {"after": after, "limit": 1000})
        for item in page.get("data", []):
            show(LogLine(item["seq"], item["phase"], item["message"], item.get("timestamp")))
            after = item["seq"]
        if not page.get("pagination", {}).get("has_more") or not page.get("data"):
            return
