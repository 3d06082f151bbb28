"""What the benchmarks share: moto in-process, the app behind chalice's test client, and a
counter of AWS calls made through botocore's event hooks."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager

BENCH_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "SHIPYARD_STAGE": "bench",
    "SHIPYARD_CURSOR_SECRET": "bench-cursor-secret-0123456789",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


def median_subprocess_seconds(code: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, **BENCH_ENV})
        times.append(time.perf_counter() - started)
    return times


@contextmanager
def app_on_moto():
    """(chalice test client, workspace key) on moto's in-process AWS, patched as the local
    stack's moto server is (chalicelib/local/moto_server.py)."""
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(BENCH_ENV)
    from chalice.test import Client
    from moto import mock_aws

    from app import app
    from chalicelib.accounts.workspaces import create_with_key
    from chalicelib.aws.clients import reset_clients
    from chalicelib.core.settings import get_settings
    from chalicelib.local import moto_server
    from infra.provision import provision

    moto_server.patch()
    get_settings.cache_clear()
    with mock_aws():
        reset_clients()
        provision("shipyard")
        _, key = create_with_key("Bench", "enterprise")
        with Client(app) as client:
            yield client, key
        reset_clients()


class CallCounter:
    """Counts AWS API calls per service on every client chalicelib has created."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._hooked: set[int] = set()

    def _record(self, model, **_: object) -> None:
        self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def hook(self) -> None:
        from chalicelib.aws import clients

        for aws_client in list(clients._clients.values()):
            if id(aws_client) not in self._hooked:
                aws_client.meta.events.register("before-call.*.*", self._record)
                self._hooked.add(id(aws_client))

    @contextmanager
    def count(self):
        self.hook()
        self.calls.clear()
        yield self.calls
        self.hook()


def request(client, method: str, path: str, key: str, body=None, headers=None):
    sent = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    sent.update(headers or {})
    response = client.http.request(
        method, path, headers=sent, body=json.dumps(body).encode() if body is not None else b""
    )
    return response


def show(label: str, value: str) -> None:
    print(f"  {label:<58} {value}", flush=True)


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.1f} ms (n={len(values)})"
