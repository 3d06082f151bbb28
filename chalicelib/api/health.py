"""The health of Shipyard's own dependencies, each probed for real with a cheap call."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from chalicelib.aws.clients import client
from chalicelib.core.models import DependencyState, Health
from chalicelib.core.settings import get_settings
from chalicelib.host import sandbox
from chalicelib.pipeline import engines

# A 503 says when to ask again (contract section 1): soon, since probes are cheap.
RETRY_AFTER_S = 5


def _probes() -> dict:
    settings = get_settings()
    return {
        "dynamodb": lambda: client("dynamodb").describe_table(TableName=settings.table("projects")),
        "s3": lambda: client("s3").head_bucket(Bucket=settings.bucket),
        "sqs": lambda: client("sqs").list_queues(QueueNamePrefix=settings.resource_prefix),
    }


def _probe(check) -> DependencyState:
    started = time.perf_counter()
    try:
        check()
        error = None
    except Exception as failure:
        error = type(failure).__name__
    latency = round((time.perf_counter() - started) * 1000, 1)
    return DependencyState(status="down" if error else "ok", latency_ms=latency, error=error)


def check() -> Health:
    probes = _probes()
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        states = dict(zip(probes, pool.map(_probe, probes.values()), strict=True))
    healthy = all(state.status == "ok" for state in states.values())
    return Health(
        status="ok" if healthy else "degraded",
        dependencies=states,
        sandbox=sandbox.state() if engines.is_local() else None,
    )
