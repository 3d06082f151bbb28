"""Quotas, idempotency and rate limits under concurrent requests, against the real local
stack over HTTP (chalice's test client runs one request at a time)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from tests.e2e.conftest import ROOT, Stack, start_stack, stop_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = start_stack(tmp_path_factory.mktemp("limits"))
    yield running
    stop_stack(running.process)


def _workspace_key(stack: Stack, tier: str) -> str:
    """A new workspace of `tier`, made with the admin command; its key."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "chalicelib.admin",
            "create-workspace",
            "--name",
            tier,
            "--tier",
            tier,
        ],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)["api_key"]


def _all_at_once(count: int, call) -> list[tuple[int, dict, object]]:
    """Run `call(i)` in `count` threads released together; their (status, headers, body)."""
    start = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = call(i)
        except BaseException as error:  # reported below, in the test's own thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_ten_parallel_creates_at_a_limit_of_three_leave_three(stack):
    # Given a free workspace (3 projects)
    key = _workspace_key(stack, "free")

    # When ten creates arrive together
    responses = _all_at_once(
        10, lambda i: stack.request("POST", "/v1/projects", {"name": f"App {i}"}, key=key)
    )

    # Then exactly three succeed and the others are told why
    statuses = Counter(status for status, _, _ in responses)
    assert statuses == {201: 3, 403: 7}, statuses
    refused = next(body for status, _, body in responses if status == 403)["error"]
    assert refused["code"] == "feature_limit_reached"
    assert refused["details"]["feature"] == "projects" and refused["details"]["limit"] == 3
    _, _, listed = stack.request("GET", "/v1/projects", key=key)
    assert len(listed["data"]) == 3
    _, _, usage = stack.request("GET", "/v1/usage", key=key)
    assert usage["data"]["metrics"]["projects"]["used"] == 3


def test_a_hundred_concurrent_requests_with_one_key_create_one_project(stack):
    # Given a pro workspace (50 projects, so only idempotency can stop the duplicates)
    key = _workspace_key(stack, "pro")
    same_key = {"Idempotency-Key": "deploy-42"}

    def create(_: int):
        return stack.request("POST", "/v1/projects", {"name": "Shop"}, key=key, headers=same_key)

    # When a hundred identical creates with the same Idempotency-Key arrive together
    responses = _all_at_once(100, create)

    # Then one ran, and the rest were replayed or told to retry
    statuses = Counter(status for status, _, _ in responses)
    assert set(statuses) <= {201, 409}, statuses
    ran = [r for r in responses if r[0] == 201 and r[1].get("Idempotent-Replayed") is None]
    assert len(ran) == 1
    project_id = ran[0][2]["data"]["id"]
    for status, headers, body in responses:
        if status == 201:
            assert body["data"]["id"] == project_id
        else:
            assert body["error"]["code"] == "idempotency_key_in_use"
            assert headers["Retry-After"] == "1"

    # And there is one project, which a late retry gets back
    _, _, listed = stack.request("GET", "/v1/projects", key=key)
    assert [p["id"] for p in listed["data"]] == [project_id]
    status, headers, body = create(0)
    assert status == 201 and headers["Idempotent-Replayed"] == "true"
    assert body["data"]["id"] == project_id


def test_a_burst_of_parallel_requests_gets_no_more_than_the_bucket(stack):
    # Given a free key: 60 tokens, one more each second
    key = _workspace_key(stack, "free")

    # When 90 requests arrive together
    started = time.monotonic()
    responses = _all_at_once(90, lambda i: stack.request("GET", "/v1/projects", key=key))
    elapsed = time.monotonic() - started

    # Then the bucket admitted its 60, plus what refilled meanwhile, and refused the rest
    statuses = Counter(status for status, _, _ in responses)
    assert set(statuses) == {200, 429}, statuses
    assert 60 <= statuses[200] <= 60 + int(elapsed) + 1, (statuses, elapsed)
    assert all(headers["Retry-After"] for status, headers, _ in responses if status == 429)
