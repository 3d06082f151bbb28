"""The `shipyard` commands: argument parsing and what each command does."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from shipyard_cli import __version__, runtime
from shipyard_cli.api import ApiError, Client, post_form
from shipyard_cli.follow import FINAL_STATUSES, Follower, LogLine, read_all
from shipyard_cli.output import Output, human_size
from shipyard_cli.pack import PackError, pack, read_chunks

DEFAULT_URL = "http://127.0.0.1:8000"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
WAIT_TIMEOUT_S = 25


class Failed(Exception):
    """The command ran but its outcome is a failure (a deployment that didn't run)."""


def paths(project_id: str, deployment_id: str | None = None) -> str:
    base = f"/v1/projects/{project_id}"
    return f"{base}/deployments/{deployment_id}" if deployment_id else base


def find_by_slug(client: Client, slug: str) -> dict[str, Any] | None:
    cursor = None
    while True:
        page = client.get("/v1/projects", {"search": slug, "limit": 100, "cursor": cursor})
        for project in page["data"]:
            if project["slug"] == slug:
                return project
        cursor = page["pagination"].get("next_cursor")
        if not page["pagination"].get("has_more") or not cursor:
            return None


def resolve_project(client: Client, out: Output, ref: str, create: bool = False) -> dict:
    """The project named by id (`prj_...`) or slug, created from the slug with `create`."""
    if ref.startswith("prj_"):
        return client.get(paths(ref))["data"]
    project = find_by_slug(client, ref)
    if project is not None:
        return project
    if not create:
        raise ApiError(
            f"no project has the slug '{ref}'",
            "not_found",
            hint="add --create to create it, or see `shipyard projects list`",
        )
    try:
        project = client.post("/v1/projects", {"name": ref, "slug": ref})["data"]
    except ApiError as error:
        # Someone created it since we looked: use theirs.
        project = find_by_slug(client, ref) if error.code == "conflict" else None
        if project is None:
            raise
        return project
    out.info(f"Created project {project['slug']} ({project['id']})")
    return project


def require_project(args: argparse.Namespace) -> str:
    if not args.project:
        raise ApiError(
            "no project given", "usage", hint="pass --project ID|SLUG or set SHIPYARD_PROJECT"
        )
    return args.project


def upload_archive(client: Client, out: Output, project_id: str, archive, packed) -> str:
    """Request a presigned POST, send the archive straight to storage; the upload id."""
    upload = client.post(f"{paths(project_id)}/uploads", {"sha256": packed.sha256})["data"]
    if packed.size > upload["max_bytes"]:
        raise ApiError(
            f"the archive is {human_size(packed.size)}, over the "
            f"{human_size(upload['max_bytes'])} an upload may hold",
            "payload_too_large",
            hint="leave build outputs and dependencies out with a .shipyardignore",
        )
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        out.progress("Uploading", 0, packed.size)
        for chunk in read_chunks(archive):
            yield chunk
            sent += len(chunk)
            out.progress("Uploading", sent, packed.size)

    started = out.elapsed()
    post_form(upload["url"], upload["fields"], chunks(), packed.size, "source.tar.gz")
    out.info(f"Uploaded {upload['id']} in {out.elapsed() - started:.1f}s")
    return upload["id"]


def wait_final(client: Client, project_id: str, deployment_id: str) -> dict:
    """Long-poll `.../wait` until the deployment is final."""
    while True:
        deployment = client.get(
            f"{paths(project_id, deployment_id)}/wait", {"timeout_s": WAIT_TIMEOUT_S}
        )["data"]
        if deployment["status"] in FINAL_STATUSES:
            return deployment


def follow_to_end(client: Client, out: Output, project_id: str, deployment: dict) -> dict:
    """Print a new deployment's log until it ends; its final state."""
    out.info(f"Deployment {deployment['id']} (#{deployment['number']}): {deployment['status']}")
    follower = Follower(client, project_id, deployment["id"], out.log_line, out.status)
    follower.last_status = deployment["status"]
    try:
        follower.follow()
        final = client.get(paths(project_id, deployment["id"]))["data"]
        if final["status"] not in FINAL_STATUSES:
            final = wait_final(client, project_id, deployment["id"])
    except KeyboardInterrupt:
        out.info(
            f"\nStopped following; {deployment['id']} goes on. Follow it again with:\n"
            f"  shipyard logs {deployment['id']} --project {project_id} --follow"
        )
        raise
    return final


def report(out: Output, deployment: dict, project: dict | None = None) -> None:
    """The outcome; on success the project's stable URL (the deployment's own if it has
    none yet), which serves it now."""
    if deployment["status"] != "running":
        code = deployment.get("error_code") or deployment["status"]
        message = deployment.get("error_message") or f"the deployment is {deployment['status']}"
        raise Failed(f"error: {message} ({code})")
    out.info(f"{deployment['id']} is running ({out.elapsed():.1f}s)")
    out.result((project or {}).get("url") or deployment.get("url") or "")


def cmd_deploy(client: Client, out: Output, args: argparse.Namespace) -> None:
    root = Path(args.directory)
    ref = require_project(args)
    out.info(f"Packing {root} ...")
    with tempfile.TemporaryFile(prefix="shipyard-", suffix=".tar.gz") as archive:
        try:
            packed = pack(root, archive)
        except PackError as error:
            raise ApiError(str(error), "pack_failed") from None
        out.info(
            f"Packed {packed.files} files into {human_size(packed.size)} "
            f"(sha256 {packed.sha256[:12]})"
        )
        project = resolve_project(client, out, ref, args.create)
        upload_id = upload_archive(client, out, project["id"], archive, packed)
    body = {"upload_id": upload_id}
    if args.note:
        body["note"] = args.note
    deployment = client.post(f"{paths(project['id'])}/deployments", body)["data"]
    report(out, follow_to_end(client, out, project["id"], deployment), project)


def cmd_rollback(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, require_project(args))
    deployment = client.post(f"{paths(project['id'])}/rollback", {"deployment_id": args.to})["data"]
    out.info(f"Rolling {project['slug']} back to {args.to}")
    report(out, follow_to_end(client, out, project["id"], deployment), project)


def cmd_logs(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, require_project(args))

    def show(line: LogLine) -> None:
        out.result(f"[{line.phase}] {line.message}")

    if args.runtime:
        return runtime.runtime_logs(client, out, project, args.deployment, args.follow, show)
    if args.deployment is None:
        raise ApiError("a deployment id is needed (or --runtime)", "usage")
    if not args.follow:
        for line in read_all(client, project["id"], args.deployment):
            show(line)
        return
    follower = Follower(client, project["id"], args.deployment, show, out.status)
    follower.follow()
    final = client.get(paths(project["id"], args.deployment))["data"]
    out.info(f"{args.deployment} is {final['status']}")


def cmd_open(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, require_project(args))
    runtime.open_project(out, project, args.browser)


def cmd_status(client: Client, out: Output, args: argparse.Namespace) -> None:
    runtime.show_status(client, out, resolve_project(client, out, require_project(args)))


def cmd_projects_list(client: Client, out: Output, args: argparse.Namespace) -> None:
    page = client.get("/v1/projects", {"search": args.search, "limit": args.limit})
    if args.json:
        return out.json(page["data"])
    rows = [(p["id"], p["slug"], p["status"], p.get("url")) for p in page["data"]]
    out.table(rows, ["id", "slug", "status", "url"])


def cmd_projects_create(client: Client, out: Output, args: argparse.Namespace) -> None:
    body = {"name": args.name, "runtime": args.runtime}
    if args.slug:
        body["slug"] = args.slug
    project = client.post("/v1/projects", body)["data"]
    if args.json:
        return out.json(project)
    out.info(f"Created project {project['slug']}")
    out.result(project["id"])


def cmd_deployments_list(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, require_project(args))
    page = client.get(
        f"{paths(project['id'])}/deployments", {"status": args.status, "limit": args.limit}
    )
    if args.json:
        return out.json(page["data"])
    rows = [
        (d["id"], d["number"], d["status"], d["source"].get("type"), d["created_at"], d["url"])
        for d in page["data"]
    ]
    out.table(rows, ["id", "number", "status", "source", "created", "url"])


def cmd_env_list(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, require_project(args))
    env = client.get(f"{paths(project['id'])}/env")["data"]
    if args.json:
        return out.json(env)
    rows = [
        (key, "(secret)" if var.get("secret") else var.get("value"))
        for key, var in sorted(env.get("vars", {}).items())
    ]
    out.table(rows, ["key", "value"])


def cmd_env_set(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, require_project(args))
    values = {}
    for assignment in args.assignments:
        key, equals, value = assignment.partition("=")
        if not equals:
            raise ApiError(f"'{assignment}' is not KEY=VALUE", "usage")
        values[key] = {"value": value, "secret": args.secret}
    client.put(f"{paths(project['id'])}/env", {"vars": values})
    out.info(f"Set {', '.join(values)}; it reaches the app at its next deployment or redeploy")


def cmd_env_unset(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, require_project(args))
    for key in args.keys:
        client.delete(f"{paths(project['id'])}/env/{key}")
    out.info(f"Removed {', '.join(args.keys)}")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="shipyard",
        description="Deploy apps to Shipyard. Configure with SHIPYARD_URL and SHIPYARD_API_KEY.",
    )
    root.add_argument("--version", action="version", version=f"shipyard {__version__}")
    root.add_argument("--url", help="API base URL (default: $SHIPYARD_URL or " + DEFAULT_URL + ")")
    root.add_argument("--api-key", help="API key (default: $SHIPYARD_API_KEY)")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent, name: str, run: Callable, help_text: str, project: bool = False):
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(run=run)
        if project:
            sub.add_argument(
                "--project",
                "-p",
                default=os.environ.get("SHIPYARD_PROJECT"),
                help="project id or slug (default: $SHIPYARD_PROJECT)",
            )
        return sub

    def json_flag(sub) -> None:
        sub.add_argument("--json", action="store_true", help="print JSON")

    deploy = command(commands, "deploy", cmd_deploy, "Deploy a directory.", project=True)
    deploy.add_argument("directory", nargs="?", default=".", help="default: .")
    deploy.add_argument("--create", action="store_true", help="create the project if missing")
    deploy.add_argument("--note", help="a note kept on the deployment")

    projects = commands.add_parser("projects", help="List or create projects.")
    project_commands = projects.add_subparsers(dest="subcommand", required=True)
    listing = command(project_commands, "list", cmd_projects_list, "List projects.")
    listing.add_argument("--search", help="name or slug contains")
    listing.add_argument("--limit", type=int, default=100)
    json_flag(listing)
    create = command(project_commands, "create", cmd_projects_create, "Create a project.")
    create.add_argument("name")
    create.add_argument("--slug")
    create.add_argument("--runtime", default="auto", choices=["auto", "static", "node", "python"])
    json_flag(create)

    deployments = commands.add_parser("deployments", help="List deployments.")
    deployment_commands = deployments.add_subparsers(dest="subcommand", required=True)
    listing = command(
        deployment_commands, "list", cmd_deployments_list, "List deployments.", project=True
    )
    listing.add_argument("--status")
    listing.add_argument("--limit", type=int, default=20)
    json_flag(listing)

    logs = command(commands, "logs", cmd_logs, "Show a deployment's log.", project=True)
    logs.add_argument("deployment", nargs="?", help="deployment id (dep_...)")
    logs.add_argument("--follow", "-f", action="store_true", help="follow until it ends")
    logs.add_argument(
        "--runtime", action="store_true", help="what the app prints (default: the running one)"
    )
    opening = command(commands, "open", cmd_open, "Print the project's URL.", project=True)
    opening.add_argument("--browser", action="store_true", help="also open it in a browser")
    command(commands, "status", cmd_status, "The project's URL and what runs.", project=True)

    rollback = command(
        commands, "rollback", cmd_rollback, "Run an earlier deployment again.", project=True
    )
    rollback.add_argument("--to", required=True, help="the deployment to bring back (dep_...)")

    env = commands.add_parser("env", help="Environment variables of a project.")
    env_commands = env.add_subparsers(dest="subcommand", required=True)
    listing = command(env_commands, "list", cmd_env_list, "List variables.", project=True)
    json_flag(listing)
    setting = command(env_commands, "set", cmd_env_set, "Set variables.", project=True)
    setting.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    setting.add_argument("--secret", action="store_true", help="store them as secrets")
    unsetting = command(env_commands, "unset", cmd_env_unset, "Remove variables.", project=True)
    unsetting.add_argument("keys", nargs="+", metavar="KEY")
    return root


def main(argv: list[str] | None = None, out: Output | None = None) -> int:
    args = parser().parse_args(argv)
    out = out or Output()
    api_key = args.api_key or os.environ.get("SHIPYARD_API_KEY")
    client = Client(
        args.url or os.environ.get("SHIPYARD_URL") or DEFAULT_URL,
        api_key,
        on_retry=lambda why, wait: out.info(f"{why}; retrying in {wait:.0f}s"),
    )
    try:
        if not api_key:
            raise ApiError(
                "SHIPYARD_API_KEY is not set",
                "missing_api_key",
                hint="`make run` prints the local stack's key; export SHIPYARD_API_KEY=sk_live_...",
            )
        args.run(client, out, args)
    except ApiError as error:
        out.error(error)
        return EXIT_USAGE if error.code == "usage" else EXIT_FAILED
    except Failed as failure:
        out.info(str(failure))
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK


def run() -> None:
    sys.exit(main())
