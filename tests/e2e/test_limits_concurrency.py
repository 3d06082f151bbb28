"""Quotas, idempotency and rate limits under concurrent requests, against the real local
stack over HTTP (chalice's test client runs one request at a time)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    def __init__(self, url: str, env: dict[str, str]) -> None:
        self.url = url
        self.env = env

    def workspace(self, tier: str) -> str:
        """A new workspace through the admin command; its key."""
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
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return json.loads(out.stdout)["api_key"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("stack")
    api_port, moto_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHIPYARD_", "MOTO_"))}
    env.update({"SHIPYARD_MOTO_PORT": str(moto_port), "SHIPYARD_STATE_DIR": str(state)})
    log = open(state / "stack.log", "wb")  # noqa: SIM115 - the stack writes to it until stopped
    process = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.local.stack", "--port", str(api_port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, (state / "stack.log").read_text()
        assert time.monotonic() < deadline, "the local stack did not start"
        try:
            if requests.get(f"{url}/v1/health", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    try:
        yield Stack(url, env)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _all_at_once(count: int, call) -> list[requests.Response]:
    """Run `call(i)` in `count` threads released together."""
    start = threading.Barrier(count)
    results: list[requests.Response | None] = [None] * count
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
    return [r for r in results if r is not None]


def _auth(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def test_ten_parallel_creates_at_a_limit_of_three_leave_three(stack):
    # Given a free workspace (3 projects)
    key = stack.workspace("free")

    # When ten creates arrive together
    responses = _all_at_once(
        10,
        lambda i: requests.post(
            f"{stack.url}/v1/projects", json={"name": f"App {i}"}, headers=_auth(key), timeout=60
        ),
    )

    # Then exactly three succeed and the others are told why
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 3, 403: 7}, statuses
    refused = next(r for r in responses if r.status_code == 403).json()["error"]
    assert refused["code"] == "feature_limit_reached"
    assert refused["details"]["feature"] == "projects" and refused["details"]["limit"] == 3
    listed = requests.get(f"{stack.url}/v1/projects", headers=_auth(key), timeout=30).json()
    assert len(listed["data"]) == 3
    usage = requests.get(f"{stack.url}/v1/usage", headers=_auth(key), timeout=30).json()
    assert usage["data"]["metrics"]["projects"]["used"] == 3


def test_a_hundred_concurrent_requests_with_one_key_create_one_project(stack):
    # Given a pro workspace (50 projects, so only idempotency can stop the duplicates)
    key = stack.workspace("pro")
    headers = _auth(key, **{"Idempotency-Key": "deploy-42"})

    # When a hundred identical creates with the same Idempotency-Key arrive together
    responses = _all_at_once(
        100,
        lambda i: requests.post(
            f"{stack.url}/v1/projects", json={"name": "Shop"}, headers=headers, timeout=60
        ),
    )

    # Then one ran, the rest were replayed or told to retry
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    ran = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    assert len(ran) == 1
    project_id = ran[0].json()["data"]["id"]
    for response in responses:
        if response.status_code == 201:
            assert response.json()["data"]["id"] == project_id
        else:
            assert response.json()["error"]["code"] == "idempotency_key_in_use"
            assert response.headers["Retry-After"] == "1"

    # And there is one project, which a late retry gets back
    listed = requests.get(f"{stack.url}/v1/projects", headers=_auth(key), timeout=30).json()
    assert [p["id"] for p in listed["data"]] == [project_id]
    late = requests.post(
        f"{stack.url}/v1/projects", json={"name": "Shop"}, headers=headers, timeout=30
    )
    assert late.status_code == 201 and late.headers["Idempotent-Replayed"] == "true"
    assert late.json()["data"]["id"] == project_id


def test_a_burst_of_parallel_requests_gets_no_more_than_the_bucket(stack):
    # Given a free key: 60 tokens, one more each second
    key = stack.workspace("free")

    # When 90 requests arrive together
    started = time.monotonic()
    responses = _all_at_once(
        90, lambda i: requests.get(f"{stack.url}/v1/projects", headers=_auth(key), timeout=60)
    )
    elapsed = time.monotonic() - started

    # Then the bucket admitted its 60, plus what refilled meanwhile, and refused the rest
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) == {200, 429}, statuses
    assert 60 <= statuses[200] <= 60 + int(elapsed) + 1, (statuses, elapsed)
    assert all(r.headers["Retry-After"] for r in responses if r.status_code == 429)
