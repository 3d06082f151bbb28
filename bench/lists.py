"""Pages that must not slow down as a project grows: the first page of deployments (and
of `?status=running`, 1 running among the rest stopped, and `?environment=preview`, 1
preview among the rest production) with 10,000 deployments against 10, and a log read
after a cursor at line 100,000 against line 10. Ratios in one run.

Each figure comes twice: the time, on moto as the local stack runs it (a Query on a
table's key reads its partition from the key condition; one on an index still walks the
table, the same table for both sides of a ratio), and the items DynamoDB read for the page
(ScannedCount), which is what a page costs on AWS."""

from __future__ import annotations

import json
import statistics
import time

from bench.harness import app_on_moto, request, show

RUNS = 15
PAGE = 10  # the page both sides of a list's ratio read
BIG = 10_000
LINES = 100_000


def _seed_deployments(project: dict, count: int) -> list[str]:
    """`count` deployments as the store keeps them (the first running, the second a
    preview, the rest stopped production ones), written in batches: the figure is about
    reading them."""
    from chalicelib.core import ids
    from chalicelib.store import deployments as store

    made = []
    items = []
    for number in range(1, count + 1):
        status = "running" if number == 1 else "stopped"
        environment = "preview" if number == 2 else "production"
        deployment_id = ids.new_id("dep")
        items.append(
            {
                "id": deployment_id,
                "project_id": project["id"],
                "workspace_id": project["workspace_id"],
                "number": number,
                "status": status,
                "project_status": f"{project['id']}#{status}",
                "environment": environment,
                "project_environment": f"{project['id']}#{environment}",
                "source": {"type": "upload"},
                "log_seq": 1,
                "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:00Z",
            }
        )
        made.append(deployment_id)
    store.deployments.batch_write(puts=items)
    return made


def _scanned(client, key: str, path: str) -> int:
    """Items DynamoDB read (ScannedCount, summed over Queries) to answer one request."""
    from chalicelib.aws.clients import client as aws_client

    read: list[int] = []

    def record(parsed, model, **_: object) -> None:
        if model.name == "Query":
            read.append(parsed.get("ScannedCount", 0))

    events = aws_client("dynamodb").meta.events
    events.register("after-call.dynamodb", record)
    try:
        request(client, "GET", path, key)
    finally:
        events.unregister("after-call.dynamodb", record)
    return sum(read)


def _medians_ms(client, key: str, paths: tuple[str, str], runs: int = RUNS) -> list[float]:
    """Median ms of each path, the two measured in turn so the machine's drift falls on
    both alike."""
    times: list[list[float]] = [[], []]
    for _ in range(runs):
        for side, path in enumerate(paths):
            started = time.perf_counter()
            response = request(client, "GET", path, key)
            times[side].append(time.perf_counter() - started)
            assert response.status_code == 200, response.body
    return [statistics.median(each) * 1000 for each in times]


def run() -> None:
    from chalicelib.store import logs as log_store

    with app_on_moto() as (client, key):
        small, big = (
            json.loads(request(client, "POST", "/v1/projects", key, {"name": n}).body)["data"]
            for n in ("small", "big")
        )
        started = time.perf_counter()
        _seed_deployments(small, 10)
        big_ids = _seed_deployments(big, BIG)
        show(f"seeded {BIG + 10} deployments", f"{time.perf_counter() - started:.1f} s")
        for label, query in (
            ("first page", ""),
            ("?status=running", "?status=running"),
            ("?environment=preview", "?environment=preview"),
        ):
            # Pages of the same size on both sides: the 10 deployments fill one page.
            query += ("&" if query else "?") + f"limit={PAGE}"
            few, many = _medians_ms(
                client,
                key,
                tuple(f"/v1/projects/{p['id']}/deployments{query}" for p in (small, big)),
            )
            show(f"{label}: 10 deployments", f"{few:.1f} ms")
            show(f"{label}: {BIG:,} deployments", f"{many:.1f} ms")
            show(f"{label}: ratio {BIG:,} / 10   [target <= 1.2]", f"{many / few:.2f}")
            read_few, read_many = (
                _scanned(client, key, f"/v1/projects/{p['id']}/deployments{query}")
                for p in (small, big)
            )
            show(
                f"{label}: items read, 10 / {BIG:,}   [target <= {PAGE + 1}: a page + 1]",
                f"{read_few} / {read_many}",
            )

        deployment_id = big_ids[0]
        started = time.perf_counter()
        for first in range(1, LINES + 1, 1000):
            lines = [
                {"seq": seq, "timestamp": "2026-01-01T00:00:00Z", "phase": "build", "message": "x"}
                for seq in range(first, first + 1000)
            ]
            log_store.put_lines(deployment_id, lines)
        show(f"seeded {LINES:,} log lines", f"{time.perf_counter() - started:.1f} s")
        logs = f"/v1/projects/{big['id']}/deployments/{deployment_id}/logs?limit=100&after="
        early, late = _medians_ms(client, key, (logs + "10", logs + str(LINES - 200)), runs=5)
        show("log page after line 10", f"{early:.1f} ms")
        show(f"log page after line {LINES - 200:,}", f"{late:.1f} ms")
        show("log page ratio late / early   [target <= 1.2]", f"{late / early:.2f}")
        read_early = _scanned(client, key, logs + "10")
        read_late = _scanned(client, key, logs + str(LINES - 200))
        show("log page items read, early / late   [target: equal]", f"{read_early} / {read_late}")
