"""What the local stack does when it starts again on the same moto data: each project's
running deployment is adopted if its app still runs, or started again from its artifact
(either way its project's URL is switched to it), builds that were running in the previous
process (which took them along when it stopped) are failed so they can be retried, and a
deployment the previous process left `built` (or created `deploying`) before its deploy
workflow started gets its workflow now (named after the deployment, so it runs once).
The tasks of workflows already running were handed back by the pump (local/pump.py).
Found through the sparse status index: no Scan."""

from __future__ import annotations

from chalicelib.core.log import logger
from chalicelib.deployments import service as deployments
from chalicelib.pipeline import engines, workflow
from chalicelib.pipeline.workflow import app_spec, serve_current
from chalicelib.store import deployments as store

EVERYTHING = "9999"  # sorts after every status_at: "all of them"


def recover() -> dict[str, int]:
    counts = {"restarted": 0, "failed_builds": 0, "workflows_started": 0}
    for item in store.stuck("building", EVERYTHING):
        if item.get("build_method") == "local" and not engines.is_building(item["id"]):
            moved = deployments.fail(
                item, "internal_error", "The local stack stopped during the build; retry it"
            )
            counts["failed_builds"] += moved is not None
    unstarted = [
        *store.stuck("built", EVERYTHING),
        *(i for i in store.stuck("deploying", EVERYTHING) if not i.get("execution_arn")),
    ]
    for item in unstarted:
        workflow.start(item)
        counts["workflows_started"] += 1
    apps = engines.apps()
    for item in store.stuck("running", EVERYTHING):
        if apps.alive(item)[0]:
            # Adopted: its runtime log is followed again and the edge serves it.
            apps.start(app_spec(item), None)
            serve_current(item)
            continue
        try:
            url = apps.start(app_spec(item), None)
        except Exception as error:
            logger().exception("Could not restart a running deployment")
            deployments.log(
                item, "system", f"Could not restart after the local stack restarted: {error}"
            )
            continue
        store.set_url(item, url)
        serve_current({**item, "url": url})
        deployments.log(item, "system", f"Restarted at {url} (the local stack restarted)")
        counts["restarted"] += 1
    return counts
