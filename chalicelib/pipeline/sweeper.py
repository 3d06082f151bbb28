"""The scheduled sweep: nothing waits forever.

A deployment `pending` longer than pending_timeout_s, `building` longer than the build
timeout, or `built`/`deploying` longer than the deploy timeout is failed with
`timed_out`, and its build or workflow is stopped. Pending deployments older than
pending_requeue_s are enqueued again, so a lost builds message only delays a build.
A preview that has run preview_idle_s (7 days) without a new push to its branch is
stopped. Every read is a Query of a sparse index (`by_active_status`,
`by_running_preview`): no Scan.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.core.clock import precise, rfc3339
from chalicelib.core.log import logger
from chalicelib.core.settings import get_settings
from chalicelib.deployments import service as deployments
from chalicelib.pipeline import actions as pipeline
from chalicelib.pipeline import builds
from chalicelib.store import deployments as store


def sweep() -> dict[str, int]:
    settings = get_settings()
    now = datetime.now(UTC)
    timeouts = {
        "pending": settings.pending_timeout_s,
        "building": settings.build_timeout_s,
        "built": settings.deploy_timeout_s,
        "deploying": settings.deploy_timeout_s,
    }
    counts = {"timed_out": 0, "requeued": 0}
    for status, timeout_s in timeouts.items():
        cutoff = precise(now - timedelta(seconds=timeout_s))
        for item in store.stuck(status, cutoff):
            moved = deployments.fail(
                item, "timed_out", f"It was {status} for more than {timeout_s} s"
            )
            if moved is not None:
                counts["timed_out"] += 1
                try:
                    pipeline.stop_work(item)
                except Exception:
                    logger().exception("Could not stop a timed-out deployment's work")
    counts["previews_stopped"] = 0
    idle_cutoff = rfc3339(now - timedelta(seconds=settings.preview_idle_s))
    for item in store.running_previews_since_before(idle_cutoff):
        moved = deployments.move(
            item,
            "stopped",
            f"Stopped: no push to its branch for {settings.preview_idle_s // 86400} days",
            {"running_preview": None},
        )
        if moved is not None:
            counts["previews_stopped"] += 1
            pipeline.stop_work(item)
    requeue_cutoff = precise(now - timedelta(seconds=settings.pending_requeue_s))
    for item in store.stuck("pending", requeue_cutoff):
        builds.enqueue(item)
        counts["requeued"] += 1
    return counts
