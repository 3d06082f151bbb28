"""The `shipyard` commands: argument parsing and what each command does."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import getpass
import json
import os
import sys
import tempfile
import urllib.parse
import uuid
import webbrowser
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from shipyard_cli import __version__, config
from shipyard_cli.api import ApiError, Client, download, post_form
from shipyard_cli.follow import FINAL_STATUSES, Follower, LogLine, read_all
from shipyard_cli.output import Output, human_size
from shipyard_cli.pack import PackError, pack, read_chunks

DEFAULT_URL = config.DEFAULT_URL
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
    """--project, else $SHIPYARD_PROJECT, else the project `shipyard link` tied here."""
    if args.project:
        return args.project
    linked = config.find_link()
    if linked is not None:
        return linked[1]["project_id"]
    raise ApiError(
        "no project given",
        "usage",
        hint="pass --project ID|SLUG, set SHIPYARD_PROJECT, or run `shipyard link ID|SLUG` here",
    )


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


def report(out: Output, deployment: dict, as_json: bool = False, project_url=None) -> None:
    """The outcome; on success the project's stable URL, which serves it now (the
    deployment's own where the project has none yet: on AWS before a first promote)."""
    if as_json:
        out.json(deployment)
    if deployment["status"] != "running":
        code = deployment.get("error_code") or deployment["status"]
        message = deployment.get("error_message") or f"the deployment is {deployment['status']}"
        raise Failed(f"error: {message} ({code})")
    out.info(f"{deployment['id']} is running ({out.elapsed():.1f}s)")
    if not as_json:
        out.result(project_url or deployment.get("url") or "")


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
    report(
        out, follow_to_end(client, out, project["id"], deployment), args.json, project.get("url")
    )


def cmd_rollback(client: Client, out: Output, args: argparse.Namespace) -> None:
    """`rollback --to DEP` and `promote DEP`: both run an earlier build again, no rebuild."""
    project = resolve_project(client, out, require_project(args))
    target = args.to or newest(client, project["id"], "stopped", "production")["id"]
    deployment = client.post(f"{paths(project['id'])}/rollback", {"deployment_id": target})["data"]
    out.info(f"{'Promoting' if args.command == 'promote' else 'Rolling back to'} {target}")
    finish(client, out, args, project["id"], deployment, project.get("url"))


def finish(
    client: Client,
    out: Output,
    args: argparse.Namespace,
    project_id: str,
    deployment,
    project_url: str | None = None,
):
    """Follow a new deployment to its end (exit 0 only if it runs), or with --no-follow
    print it as it is now."""
    if getattr(args, "no_follow", False):
        if args.json:
            return out.json(deployment)
        out.info(f"{deployment['id']} (#{deployment['number']}) is {deployment['status']}")
        return out.result(deployment["id"])
    report(out, follow_to_end(client, out, project_id, deployment), args.json, project_url)


def newest(
    client: Client, project_id: str, status: str | None = None, environment: str | None = None
) -> dict:
    query = {"limit": 1, "status": status, "environment": environment}
    page = client.get(f"{paths(project_id)}/deployments", query)
    if not page["data"]:
        which = " ".join(filter(None, (status, environment, "deployment")))
        raise ApiError(f"the project has no {which}", "not_found")
    return page["data"][0]


def cmd_logs(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, require_project(args))
    deployment_id = args.deployment or newest(client, project["id"])["id"]
    kind = "runtime-logs" if args.runtime else "logs"

    def show(line: LogLine) -> None:
        if args.json:
            out.result(json.dumps(dataclasses.asdict(line)))
        else:
            out.result(f"[{line.phase}] {line.message}")

    if not args.follow:
        for line in read_all(client, project["id"], deployment_id, kind):
            show(line)
        return
    follower = Follower(client, project["id"], deployment_id, show, out.status, kind=kind)
    follower.follow()
    final = client.get(paths(project["id"], deployment_id))["data"]
    out.info(f"{deployment_id} is {final['status']}")


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
    env = client.put(f"{paths(project['id'])}/env", {"vars": values})["data"]
    if args.json:
        return out.json(env)
    out.info(f"Set {', '.join(values)}; it reaches the app at its next deployment or redeploy")


def cmd_env_unset(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, require_project(args))
    for key in args.keys:
        client.delete(f"{paths(project['id'])}/env/{key}")
    if args.json:
        return out.json({"removed": args.keys})
    out.info(f"Removed {', '.join(args.keys)}")


def cmd_login(client: Client, out: Output, args: argparse.Namespace) -> None:
    """Check the key against the API, then keep the URL and key in the config file."""
    key = args.api_key or os.environ.get("SHIPYARD_API_KEY")
    if not key and config.is_local(client.base_url):
        key = config.local_stack_key()
        if key:
            out.info("Using the local stack's first workspace key")
    if not key and sys.stdin.isatty():
        key = getpass.getpass("API key: ").strip()
    elif not key:
        key = sys.stdin.readline().strip()
    if not key:
        raise ApiError("no API key given", "usage", hint="pass --api-key or type it when asked")
    client.api_key = key
    me = client.get("/v1/auth/me")["data"]
    path = config.save_login(client.base_url, key)
    if args.json:
        return out.json({"url": client.base_url, "config": str(path), "principal": me})
    out.info(f"Logged in to {client.base_url}; the key is kept in {path} (mode 0600)")


def cmd_logout(client: Client, out: Output, args: argparse.Namespace) -> None:
    removed = config.forget_login()
    if args.json:
        return out.json({"removed": removed})
    out.info("Logged out" if removed else "Not logged in")


def cmd_link(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, args.target, args.create)
    path = config.write_link(Path(args.directory), project, client.base_url)
    if args.json:
        return out.json({"project": project, "link": str(path)})
    out.info(f"Linked {Path(args.directory).resolve()} to {project['slug']} ({project['id']})")


def cmd_status(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, require_project(args))
    deployments = client.get(f"{paths(project['id'])}/deployments", {"limit": 1})["data"]
    latest = deployments[0] if deployments else None
    if args.deployment:
        latest = client.get(paths(project["id"], args.deployment))["data"]
    if args.json:
        current = project.get("current_deployment_id")
        running = client.get(paths(project["id"], current))["data"] if current else None
        return out.json({"project": project, "deployment": latest, "running": running})
    rows = [("project", f"{project['slug']} ({project['id']})"), ("status", project["status"])]
    rows.append(("url", project.get("url") or ""))
    if latest:
        rows += [
            ("deployment", f"{latest['id']} (#{latest['number']})"),
            ("deployment status", latest["status"]),
            ("source", latest["source"].get("type")),
            ("created", latest["created_at"]),
        ]
        if latest.get("error_message"):
            rows.append(("error", f"{latest['error_message']} ({latest.get('error_code')})"))
    rows += running_rows(client, project)
    for name, value in rows:
        out.result(f"{name + ':':<19}{value}")


def running_rows(client: Client, project: dict) -> list[tuple[str, str]]:
    """What serves the project URL: its running deployment and how it fares (supervision)."""
    if not project.get("current_deployment_id"):
        return [("running", "none")]
    running = client.get(paths(project["id"], project["current_deployment_id"]))["data"]
    rows = [("running", f"{running['id']} (#{running['number']}), {running['status']}")]
    runtime = running.get("runtime")
    if runtime:
        restarts = runtime["restarts"]
        text = f"{runtime['state']}, {restarts} restart{'' if restarts == 1 else 's'}"
        if runtime.get("last_restart_at"):
            text += f" (last at {runtime['last_restart_at']}"
            if runtime.get("last_exit_code") is not None:
                text += f", after exit code {runtime['last_exit_code']}"
            text += ")"
        rows.append(("runtime", text))
    return rows


def cmd_open(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, require_project(args))
    url = project.get("url")
    if args.dashboard or not url:
        url = client.base_url.rstrip("/") + f"/#/projects/{project['id']}"
    if args.json:
        return out.json({"url": url})
    out.result(url)
    if not args.print_only:
        webbrowser.open(url)


def cmd_cancel(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, require_project(args))
    deployment = client.post(f"{paths(project['id'], args.deployment)}/cancel")["data"]
    if args.json:
        return out.json(deployment)
    out.info(f"{deployment['id']} is {deployment['status']}")


def cmd_redeploy(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, require_project(args))
    body = {"note": args.note} if args.note else {}
    deployment = client.post(f"{paths(project['id'])}/redeploy", body)["data"]
    finish(client, out, args, project["id"], deployment, project.get("url"))


def cmd_env_pull(client: Client, out: Output, args: argparse.Namespace) -> None:
    """Write the variables to a .env file; a secret's value is never written."""
    project = resolve_project(client, out, require_project(args))
    variables = client.get(f"{paths(project['id'])}/env")["data"].get("vars", {})
    lines = [f"# Environment of {project['slug']} ({project['id']}), from shipyard env pull"]
    secrets = []
    for key, var in sorted(variables.items()):
        if var.get("secret"):
            secrets.append(key)
            lines.append(f"# {key} is a secret: its value is not shown")
        else:
            lines.append(f"{key}={dotenv_quote(var.get('value') or '')}")
    Path(args.file).write_text("\n".join(lines) + "\n")
    if args.json:
        return out.json(
            {"file": args.file, "written": len(variables) - len(secrets), "secrets": secrets}
        )
    out.info(f"Wrote {len(variables) - len(secrets)} variables to {args.file}")
    if secrets:
        out.info(f"Left out the values of secrets: {', '.join(secrets)}")


def dotenv_quote(value: str) -> str:
    if value and all(c.isalnum() or c in "-_./:@%+,=" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def cmd_keys_list(client: Client, out: Output, args: argparse.Namespace) -> None:
    keys = client.get("/v1/api-keys", {"limit": 100})["data"]
    if args.json:
        return out.json(keys)
    rows = [
        (k["id"], k["name"], k["prefix"], ",".join(k["scopes"]), k.get("expires_at")) for k in keys
    ]
    out.table(rows, ["id", "name", "prefix", "scopes", "expires"])


def cmd_keys_create(client: Client, out: Output, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"name": args.name, "scopes": args.scope or ["*"]}
    if args.expires_at:
        body["expires_at"] = args.expires_at
    key = client.post("/v1/api-keys", body)["data"]
    if args.json:
        return out.json(key)
    out.info(f"Created {key['id']} ({', '.join(key['scopes'])}); the key is shown once:")
    out.result(key["key"])


def cmd_keys_revoke(client: Client, out: Output, args: argparse.Namespace) -> None:
    client.request("DELETE", f"/v1/api-keys/{args.key_id}", headers=idempotency())
    if args.json:
        return out.json({"revoked": args.key_id})
    out.info(f"Revoked {args.key_id}")


def cmd_keys_rotate(client: Client, out: Output, args: argparse.Namespace) -> None:
    body = {"grace_period_hours": args.grace_period_hours}
    key = client.post(f"/v1/api-keys/{args.key_id}/rotate", body)["data"]
    if args.json:
        return out.json(key)
    out.info(f"Rotated {args.key_id}; the old key works {args.grace_period_hours} h more")
    out.result(key["key"])


def idempotency() -> dict[str, str]:
    return {"Idempotency-Key": f"cli-{uuid.uuid4()}"}


def cmd_webhooks_list(client: Client, out: Output, args: argparse.Namespace) -> None:
    hooks = client.get("/v1/webhooks", {"limit": 100})["data"]
    if args.json:
        return out.json(hooks)
    rows = [(h["id"], h["url"], ",".join(h.get("events", [])), h.get("is_active")) for h in hooks]
    out.table(rows, ["id", "url", "events", "active"])


def cmd_webhooks_create(client: Client, out: Output, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"url": args.endpoint, "events": args.event or ["*"]}
    if args.description:
        body["description"] = args.description
    hook = client.post("/v1/webhooks", body)["data"]
    if args.json:
        return out.json(hook)
    out.info(f"Created {hook['id']}; its signing secret is shown once:")
    out.result(hook.get("secret") or "")


def cmd_webhooks_delete(client: Client, out: Output, args: argparse.Namespace) -> None:
    client.request("DELETE", f"/v1/webhooks/{args.webhook_id}", headers=idempotency())
    if args.json:
        return out.json({"deleted": args.webhook_id})
    out.info(f"Deleted {args.webhook_id}")


def cmd_webhooks_test(client: Client, out: Output, args: argparse.Namespace) -> None:
    result = client.post(f"/v1/webhooks/{args.webhook_id}/test")["data"]
    if args.json:
        return out.json(result)
    out.info(f"status {result.get('status_code')} in {result.get('response_time_ms')} ms")
    if not result.get("success"):
        raise Failed(
            f"error: the test delivery failed: {result.get('error') or result.get('status_code')}"
        )


def cmd_webhooks_deliveries(client: Client, out: Output, args: argparse.Namespace) -> None:
    query = {"limit": 100, "status": args.status}
    deliveries = client.get(f"/v1/webhooks/{args.webhook_id}/deliveries", query)["data"]
    if args.json:
        return out.json(deliveries)
    rows = [
        (d["id"], d["event_type"], d["status"], d.get("attempt"), d.get("response_code"))
        for d in deliveries
    ]
    out.table(rows, ["id", "event", "status", "attempts", "response"])


def cmd_files_list(client: Client, out: Output, args: argparse.Namespace) -> None:
    project = resolve_project(client, out, require_project(args))
    path = f"{paths(project['id'], args.deployment)}/files"
    found, cursor = [], None
    while True:
        page = client.get(path, {"limit": 100, "cursor": cursor})
        found += page["data"]
        cursor = page["pagination"].get("next_cursor")
        if not page["pagination"].get("has_more") or not cursor:
            break
    if args.json:
        return out.json(found)
    out.table([(f["type"], f["size"], f["path"]) for f in found], ["type", "size", "path"])


def cmd_files_get(client: Client, out: Output, args: argparse.Namespace) -> None:
    """One file of the artifact to stdout (or -o FILE), or without PATH the whole artifact.
    With --json and no -o, a file comes as JSON: its path, size and base64 content."""
    project = resolve_project(client, out, require_project(args))
    base = paths(project["id"], args.deployment)
    if args.path:
        body = download(client, f"{base}/files/{urllib.parse.quote(args.path, safe='')}")
    else:
        body = download(client, f"{base}/artifact", {"format": args.format})
    target = args.output or (None if args.path else f"{args.deployment}.{args.format}")
    if target is None and args.json:
        content = base64.b64encode(body).decode()
        return out.json({"path": args.path, "bytes": len(body), "content_base64": content})
    if target is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return
    Path(target).write_bytes(body)
    if args.json:
        return out.json({"file": target, "bytes": len(body)})
    out.info(f"Wrote {human_size(len(body))} to {target}")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="shipyard",
        description="Deploy apps to Shipyard. Credentials: --api-key, $SHIPYARD_API_KEY, "
        "`shipyard login`, or the local stack's first key (docs/cli.md).",
    )
    root.add_argument("--version", action="version", version=f"shipyard {__version__}")
    root.add_argument(
        "--url", help="API base URL (default: $SHIPYARD_URL, the login, or " + DEFAULT_URL + ")"
    )
    root.add_argument("--api-key", help="API key (default: $SHIPYARD_API_KEY, then the login)")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        parent, name: str, run: Callable, help_text: str, project: bool = False, key: bool = True
    ):
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(run=run, needs_key=key)
        sub.add_argument("--json", action="store_true", help="print JSON on stdout")
        if project:
            sub.add_argument(
                "--project",
                "-p",
                default=os.environ.get("SHIPYARD_PROJECT"),
                help="project id or slug (default: $SHIPYARD_PROJECT, then `shipyard link`)",
            )
        return sub

    def group(name: str, help_text: str):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        return sub.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

    def no_follow(sub) -> None:
        sub.add_argument("--no-follow", action="store_true", help="don't follow it to its end")

    command(commands, "login", cmd_login, "Keep a URL and API key for later commands.")
    command(commands, "logout", cmd_logout, "Forget the kept login.", key=False)
    link = command(commands, "link", cmd_link, "Tie a directory to a project.")
    link.add_argument("target", metavar="PROJECT", help="project id or slug")
    link.add_argument("--directory", "-C", default=".", help="default: .")
    link.add_argument("--create", action="store_true", help="create the project if missing")

    deploy = command(commands, "deploy", cmd_deploy, "Deploy a directory.", project=True)
    deploy.add_argument("directory", nargs="?", default=".", help="default: .")
    deploy.add_argument("--create", action="store_true", help="create the project if missing")
    deploy.add_argument("--note", help="a note kept on the deployment")

    status = command(
        commands, "status", cmd_status, "Show a project and its newest deployment.", project=True
    )
    status.add_argument("deployment", nargs="?", help="a deployment id instead of the newest")
    opening = command(
        commands, "open", cmd_open, "Open the project's URL in a browser.", project=True
    )
    opening.add_argument("--dashboard", action="store_true", help="open its dashboard page instead")
    opening.add_argument(
        "--print", dest="print_only", action="store_true", help="only print the URL"
    )
    cancel = command(
        commands, "cancel", cmd_cancel, "Cancel a deployment in progress.", project=True
    )
    cancel.add_argument("deployment", help="deployment id (dep_...)")
    redeploy = command(
        commands,
        "redeploy",
        cmd_redeploy,
        "Deploy the current build again with the current env.",
        project=True,
    )
    redeploy.add_argument("--note")
    no_follow(redeploy)
    rollback = command(
        commands, "rollback", cmd_rollback, "Run an earlier deployment again.", project=True
    )
    rollback.add_argument(
        "--to", help="the deployment to bring back (default: the last stopped one)"
    )
    no_follow(rollback)
    promote = command(
        commands,
        "promote",
        cmd_rollback,
        "Make a deployment the running one, without a rebuild.",
        project=True,
    )
    promote.add_argument("to", metavar="DEPLOYMENT", help="deployment id (dep_...)")
    no_follow(promote)

    logs = command(commands, "logs", cmd_logs, "Show a deployment's log.", project=True)
    logs.add_argument("deployment", nargs="?", help="deployment id (default: the newest)")
    logs.add_argument("--follow", "-f", action="store_true", help="follow until it ends")
    logs.add_argument("--runtime", action="store_true", help="the app's runtime log instead")

    projects = group("projects", "List or create projects.")
    listing = command(projects, "list", cmd_projects_list, "List projects.")
    listing.add_argument("--search", help="name or slug contains")
    listing.add_argument("--limit", type=int, default=100)
    create = command(projects, "create", cmd_projects_create, "Create a project.")
    create.add_argument("name")
    create.add_argument("--slug")
    create.add_argument("--runtime", default="auto", choices=["auto", "static", "node", "python"])

    deployments = group("deployments", "List deployments.")
    listing = command(deployments, "list", cmd_deployments_list, "List deployments.", project=True)
    listing.add_argument("--status")
    listing.add_argument("--limit", type=int, default=20)

    env = group("env", "Environment variables of a project.")
    command(env, "list", cmd_env_list, "List variables.", project=True)
    setting = command(env, "set", cmd_env_set, "Set variables.", project=True)
    setting.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    setting.add_argument("--secret", action="store_true", help="store them as secrets")
    unsetting = command(env, "unset", cmd_env_unset, "Remove variables.", project=True)
    unsetting.add_argument("keys", nargs="+", metavar="KEY")
    pull = command(
        env,
        "pull",
        cmd_env_pull,
        "Write the variables to a .env file (never secrets' values).",
        project=True,
    )
    pull.add_argument("--file", "-o", default=".env", help="default: .env")

    keys = group("keys", "API keys of the workspace.")
    command(keys, "list", cmd_keys_list, "List keys.")
    key_create = command(keys, "create", cmd_keys_create, "Create a key; prints it once.")
    key_create.add_argument("name")
    key_create.add_argument("--scope", action="append", help="repeat for each scope (default: *)")
    key_create.add_argument("--expires-at", help="RFC 3339 time")
    revoke = command(keys, "revoke", cmd_keys_revoke, "Revoke a key.")
    revoke.add_argument("key_id", metavar="KEY_ID")
    rotate = command(keys, "rotate", cmd_keys_rotate, "Rotate a key; prints the new one once.")
    rotate.add_argument("key_id", metavar="KEY_ID")
    rotate.add_argument("--grace-period-hours", type=int, default=24)

    webhooks = group("webhooks", "Outgoing webhooks of the workspace.")
    command(webhooks, "list", cmd_webhooks_list, "List webhook endpoints.")
    hook_create = command(
        webhooks, "create", cmd_webhooks_create, "Create an endpoint; prints its secret once."
    )
    # Not dest "url": that is the root's --url, the API's address, which it would replace.
    hook_create.add_argument("endpoint", metavar="URL", help="where the webhooks are sent")
    hook_create.add_argument(
        "--event", action="append", help="repeat for each event pattern (default: *)"
    )
    hook_create.add_argument("--description")
    for name, run, text in (
        ("delete", cmd_webhooks_delete, "Delete an endpoint."),
        ("test", cmd_webhooks_test, "Send it a webhook.test event now."),
        ("deliveries", cmd_webhooks_deliveries, "List its deliveries."),
    ):
        sub = command(webhooks, name, run, text)
        sub.add_argument("webhook_id", metavar="WEBHOOK_ID")
        if name == "deliveries":
            sub.add_argument("--status", choices=["pending", "success", "failed", "retrying"])

    files = group("files", "What a deployment built.")
    file_list = command(files, "list", cmd_files_list, "List the artifact's files.", project=True)
    file_list.add_argument("deployment", help="deployment id (dep_...)")
    file_get = command(
        files,
        "get",
        cmd_files_get,
        "Download one file (to stdout) or the whole artifact.",
        project=True,
    )
    file_get.add_argument("deployment", help="deployment id (dep_...)")
    file_get.add_argument("path", nargs="?", help="a file's path; without it, the whole artifact")
    file_get.add_argument("--format", choices=["tar.gz", "zip"], default="tar.gz")
    file_get.add_argument("--output", "-o", help="write to this file")
    return root


def main(argv: list[str] | None = None, out: Output | None = None) -> int:
    args = parser().parse_args(argv)
    out = out or Output()
    found = config.credentials(args.url, args.api_key)
    client = Client(
        found.url,
        found.api_key,
        on_retry=lambda why, wait: out.info(f"{why}; retrying in {wait:.0f}s"),
    )
    try:
        if not found.api_key and args.needs_key and args.run is not cmd_login:
            raise ApiError(
                "SHIPYARD_API_KEY is not set",
                "missing_api_key",
                hint="run `shipyard login`, or export SHIPYARD_API_KEY=sk_live_... "
                "(`make run` prints the local stack's key)",
            )
        args.run(client, out, args)
    except ApiError as error:
        out.error(error)
        return EXIT_USAGE if error.code == "usage" else EXIT_FAILED
    except Failed as failure:
        out.info(str(failure))
        return EXIT_FAILED
    except OSError as error:
        out.info(f"error: {error}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK


def run() -> None:
    sys.exit(main())
