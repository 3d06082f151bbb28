"""What identity and limits cost a request, on moto in-process:

- AWS calls (counted by botocore's before-call hook) of an authenticated GET on a warm key
  cache, of a POST with an Idempotency-Key, of its replay, and of a request refused by a
  bucket this process already knows is empty;
- the time the key check, rate limit and idempotency add, as the ratio of the median
  request through the app against the median of the same route functions served without
  them (same middleware, same body validation, same test client), measured interleaved.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from bench.harness import CallCounter, app_on_moto, request, show

SAMPLES_GET = 400
SAMPLES_POST = 150


def _bare_app(principal: Any) -> Any:
    """The project routes of chalicelib/api/projects.py, for a fixed principal: no key
    check, no rate limit, no scope check, no idempotency."""
    from chalice import Chalice

    from chalicelib.api.http import ROUTES, RequestContext, _render, middleware, parse_body

    bare = Chalice(app_name="bare")
    bare.register_middleware(middleware, "http")
    for spec in ROUTES:
        if spec.path not in ("/v1/projects", "/v1/projects/{project_id}"):
            continue

        def view(_spec=spec, **params: str) -> Any:
            current = bare.current_request
            ctx = RequestContext(request=current, spec=_spec, principal=principal)
            if _spec.body is not None:
                ctx.body = parse_body(current, _spec.body)
            return _render(_spec, _spec.function(ctx, **params))

        view.__name__ = f"bare_{spec.function.__name__}"
        bare.route(spec.path, methods=[spec.method], content_types=["*/*"])(view)
    return bare


def _timed(*args: Any) -> float:
    """Seconds one `request(*args)` takes."""
    started = time.perf_counter()
    response = request(*args)
    elapsed = time.perf_counter() - started
    assert response.status_code < 300, (response.status_code, response.body)
    return elapsed


def _calls_line(calls) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(calls.items())) or "none"


def _dynamodb(calls) -> int:
    return sum(n for name, n in calls.items() if name.startswith("dynamodb:"))


def aws_calls(client: Any, key: str, project_id: str) -> None:
    counter = CallCounter()
    path = f"/v1/projects/{project_id}"
    request(client, "GET", path, key)
    with counter.count() as calls:
        request(client, "GET", path, key)
    show(
        "GET /v1/projects/{id}, warm key cache: DynamoDB calls [target <= 2]", str(_dynamodb(calls))
    )
    show("  calls", _calls_line(calls))

    headers = {"Idempotency-Key": "bench-calls"}
    with counter.count() as calls:
        created = request(client, "POST", "/v1/projects", key, {"name": "calls"}, headers)
    assert created.status_code == 201
    show("POST /v1/projects + Idempotency-Key: DynamoDB calls [target <= 5]", str(_dynamodb(calls)))
    show("  calls", _calls_line(calls))
    with counter.count() as calls:
        replay = request(client, "POST", "/v1/projects", key, {"name": "calls"}, headers)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    show("  the same POST replayed: DynamoDB calls", str(_dynamodb(calls)))


def refused_calls() -> None:
    """A 429 answered from what the process already knows: no DynamoDB call."""
    from chalice.test import Client

    from app import app
    from chalicelib.accounts.workspaces import create_with_key

    _, free_key = create_with_key("Free", "free")
    counter = CallCounter()
    with Client(app) as client:
        status = 200
        while status != 429:
            status = request(client, "GET", "/v1/projects", free_key).status_code
        with counter.count() as calls:
            status = request(client, "GET", "/v1/projects", free_key).status_code
    assert status == 429
    show("GET refused by a bucket known to be empty (429): DynamoDB calls", str(_dynamodb(calls)))


def overhead(client: Any, key: str, project_id: str) -> None:
    from chalice.test import Client

    from chalicelib.identity.auth import identify

    principal = identify(key)
    path = f"/v1/projects/{project_id}"
    with Client(_bare_app(principal)) as bare:
        full_get, bare_get = [], []
        for _ in range(SAMPLES_GET):
            full_get.append(_timed(client, "GET", path, key))
            bare_get.append(_timed(bare, "GET", path, key))
        full_post, bare_post = [], []
        for i in range(SAMPLES_POST):
            headers = {"Idempotency-Key": f"bench-{i}"}
            full_post.append(
                _timed(client, "POST", "/v1/projects", key, {"name": f"a{i}"}, headers)
            )
            bare_post.append(_timed(bare, "POST", "/v1/projects", key, {"name": f"b{i}"}))

    for label, full, without in (
        ("GET /v1/projects/{id}", full_get, bare_get),
        ("POST /v1/projects + Idempotency-Key", full_post, bare_post),
    ):
        ours, base = statistics.median(full), statistics.median(without)
        show(f"{label}: median with / without checks", f"{ours * 1000:.2f} / {base * 1000:.2f} ms")
        show(
            f"  ratio (key check + rate limit{' + idempotency' if 'POST' in label else ''})",
            f"{ours / base:.2f}",
        )


def run() -> None:
    with app_on_moto() as (client, key):
        created = request(client, "POST", "/v1/projects", key, {"name": "bench"})
        project_id = json.loads(created.body)["data"]["id"]
        aws_calls(client, key, project_id)
        refused_calls()
        overhead(client, key, project_id)
