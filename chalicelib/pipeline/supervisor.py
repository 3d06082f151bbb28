"""Supervision of running deployments: the local stack calls `Supervisor.tick` every
`supervisor_tick_s` (local/stack.py); on AWS, Lambda restarts execution environments itself
and nothing calls it.

Each tick: the edge is started again if it stopped (its routes come back with it); each
`running` deployment whose app has exited, or has failed 3 health checks in a row (one
every `run.health_check_interval_s`), is restarted after a backoff (1 s doubling to 5 min;
reset once it has stayed up for 10 minutes). Every crash and restart is a runtime log line
and is recorded on the deployment's `runtime` (state, restarts, last_exit_code,
last_restart_at), which is what the events derive `deployment.crashed` from. A restarted app
that came back at another address gets the project's URL switched to it. With
`run.auto_rollback`, the third crash within 10 minutes of going live fails the deployment
(`crashed`) and rolls back to the deployment that ran before it.

What is in memory here (failed checks, when the next restart is due) is lost with the
process; what a new process needs is on the items: it starts from their `runtime`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from chalicelib.core.clock import now_iso, parse_rfc3339
from chalicelib.core.log import logger
from chalicelib.core.settings import get_settings
from chalicelib.deployments import service as deployments
from chalicelib.pipeline import actions, engines, workflow
from chalicelib.store import deployments as store
from chalicelib.store import projects as project_store
from chalicelib.store.errors import Missing

EVERYTHING = "9999"  # sorts after every status_at: every running deployment
FAILED_CHECKS = 3
CRASH_WINDOW = timedelta(minutes=10)
CRASHES_TO_ROLL_BACK = 3


@dataclass
class _Watch:
    backoff_s: float
    failures: int = 0
    next_check: float = 0.0
    restart_at: float | None = None
    up_since: float | None = None
    crashes: list[str] = field(default_factory=list)


class Supervisor:
    def __init__(self) -> None:
        self._watches: dict[str, _Watch] = {}

    def tick(self) -> None:
        apps = engines.apps()
        try:
            if apps.keep_serving():
                logger().warning("The edge had stopped: started again with its routes")
        except Exception:
            logger().exception("The edge could not be started again")
        running = {item["id"]: item for item in store.stuck("running", EVERYTHING)}
        for gone in set(self._watches) - set(running):
            del self._watches[gone]
        for item in running.values():
            try:
                self._tend(apps, item)
            except Missing:
                self._watches.pop(item["id"], None)  # its project was deleted meanwhile
            except Exception:
                logger().exception("Supervising failed", extra={"deployment_id": item["id"]})

    def _tend(self, apps: Any, item: dict[str, Any]) -> None:
        settings = get_settings()
        project = project_store.get(item["workspace_id"], item["project_id"])
        run = project.get("run", {})
        watch = self._watches.get(item["id"])
        if watch is None:
            watch = self._watches[item["id"]] = _Watch(settings.restart_backoff_s)
            watch.crashes = list((item.get("runtime") or {}).get("crashes", []))
        now = time.monotonic()
        if watch.restart_at is not None:
            if now >= watch.restart_at:
                self._restart(apps, item, project, watch)
            return
        alive, detail = apps.alive(item)
        if not alive:
            self._crashed(apps, item, project, watch, detail, apps.exit_code(item))
            return
        if now < watch.next_check:
            return
        watch.next_check = now + (run.get("health_check_interval_s") or 30)
        path = run.get("health_check_path") or "/"
        ok, detail = apps.health_check(item, path, settings.health_check_request_timeout_s)
        if ok:
            watch.failures = 0
            if watch.up_since is None:
                watch.up_since = now
            elif now - watch.up_since >= CRASH_WINDOW.total_seconds():
                watch.backoff_s = settings.restart_backoff_s
            if (item.get("runtime") or {}).get("state") != "up":
                self._record(item, state="up")
            return
        watch.failures += 1
        apps.runtime_note(
            item, f"Health check failed ({watch.failures} of {FAILED_CHECKS}): {detail}"
        )
        if watch.failures >= FAILED_CHECKS:
            self._crashed(apps, item, project, watch, f"failed {FAILED_CHECKS} health checks", None)

    def _crashed(
        self,
        apps: Any,
        item: dict[str, Any],
        project: dict[str, Any],
        watch: _Watch,
        detail: str,
        exit_code: int | None,
    ) -> None:
        settings = get_settings()
        now = now_iso()
        went_live = parse_rfc3339(item.get("status_at") or now)
        watch.crashes = [c for c in watch.crashes if parse_rfc3339(c) - went_live <= CRASH_WINDOW]
        if parse_rfc3339(now) - went_live <= CRASH_WINDOW:
            watch.crashes.append(now)
        if (
            project.get("run", {}).get("auto_rollback")
            and len(watch.crashes) >= CRASHES_TO_ROLL_BACK
        ):
            self._roll_back(apps, item, project, detail)
            return
        delay = watch.backoff_s
        watch.backoff_s = min(delay * 2, settings.restart_backoff_max_s)
        watch.restart_at = time.monotonic() + delay
        watch.failures = 0
        watch.up_since = None
        apps.runtime_note(item, f"The app crashed ({detail}); restarting in {delay:g} s")
        self._record(item, state="restarting", last_exit_code=exit_code, crashes=watch.crashes)

    def _restart(
        self, apps: Any, item: dict[str, Any], project: dict[str, Any], watch: _Watch
    ) -> None:
        watch.restart_at = None
        apps.stop(item)  # a hung app, or whatever is left of a crashed one
        path = project.get("run", {}).get("health_check_path") or "/"
        spec = workflow.app_spec(item, path)
        try:
            # On the port it had when that is free (app_spec), so its own URL keeps working.
            url = apps.start(spec, None)
        except Exception as error:
            apps.runtime_note(item, f"The app could not be started again: {error}")
            self._crashed(apps, item, project, watch, "its restart failed", apps.exit_code(item))
            return
        runtime = item.get("runtime") or {}
        recorded = self._record(
            item,
            state="starting",
            restarts=runtime.get("restarts", 0) + 1,
            last_restart_at=now_iso(),
        )
        if recorded is None:
            apps.stop(item)  # it stopped running (or its project went) meanwhile
            return
        if url != item.get("url"):
            store.set_url(item, url)
        apps.runtime_note(item, f"Restarted (restart #{recorded['runtime']['restarts']}) at {url}")
        workflow.serve_current({**item, "url": url})
        watch.next_check = 0.0

    def _roll_back(
        self, apps: Any, item: dict[str, Any], project: dict[str, Any], detail: str
    ) -> None:
        message = f"The app crashed {CRASHES_TO_ROLL_BACK} times within 10 minutes ({detail})"
        apps.runtime_note(item, message + "; rolling back")
        self._watches.pop(item["id"], None)
        self._record(item, state="crashed")
        failed = deployments.fail(item, "crashed", message, only_from=("running",))
        apps.stop(item)
        if failed is None:
            return
        if item.get("environment") == "preview":
            # Production never ran it: it stays as it is.
            deployments.log(item, "system", "A preview is not rolled back: production is unchanged")
            return
        before = _ran_before(item)
        if before is None:
            deployments.log(item, "system", "No earlier deployment to roll back to")
            return
        rollback = actions.rollback_to(project, before, f"automatic rollback: {message}")
        deployments.log(item, "system", f"Rolling back to #{before['number']} ({rollback.id})")

    def _record(self, item: dict[str, Any], **changes: Any) -> dict[str, Any] | None:
        runtime = {
            "state": "up",
            "restarts": 0,
            "last_exit_code": None,
            "last_restart_at": None,
            **(item.get("runtime") or {}),
            **changes,
        }
        updated = store.set_fields(
            item["project_id"], item["id"], {"runtime": runtime}, ("running",)
        )
        if updated is not None:
            item["runtime"] = runtime
        return updated


def _ran_before(item: dict[str, Any]) -> dict[str, Any] | None:
    """The newest deployment before `item` that reached running and can run again."""
    releases, _ = store.list_releases(item["project_id"], 20, None)
    for release in releases:
        if release["deployment_id"] == item["id"]:
            continue
        found = store.get(item["project_id"], release["deployment_id"])
        if found is not None and found.get("artifact_key") and found["number"] < item["number"]:
            return found
    return None
