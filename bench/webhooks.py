"""Webhooks: how soon a deployment's transition reaches a receiver, and what one delivered
event costs in AWS calls.

- On the real local stack (free ports, a fresh state dir), an endpoint on a receiver on
  127.0.0.1 gets the events of static-example deployments; each hit's latency is its time
  of arrival minus the transition's time, which the event id carries (to the millisecond
  of the stream record).
- On a moto server in this process, the DynamoDB, SQS and KMS calls made by the stream
  handler and the delivery consumer for one event delivered to one endpoint.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.harness import BENCH_ENV, CallCounter, show
from bench.pipeline import RUNS, SITE, Stack, _pack, _to_running
from chalicelib.host.processes import free_port

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _millis(event_id: str) -> int:
    """The time an id carries (core/ids.py: 10 base32 characters of milliseconds)."""
    value = 0
    for char in event_id.split("_", 1)[1][:10]:
        value = value * 32 + ALPHABET.index(char)
    return value


class _Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrivals.setdefault(self.headers["webhook-id"], time.time())
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _latencies() -> list[float]:
    receiver = _Receiver()
    with tempfile.TemporaryDirectory() as directory:
        stack = Stack(Path(directory))
        try:
            stack.call(
                "POST",
                "/v1/webhooks",
                {"url": receiver.url, "events": ["deployment.*", "build.*", "deploy.*"]},
            )
            project = stack.call("POST", "/v1/projects", {"name": "Bench hooks"})["data"]
            archive = _pack(SITE)
            for _ in range(RUNS):
                _to_running(stack, project["id"], archive)
            deadline = time.monotonic() + 10
            while len(receiver.arrivals) < 4 * RUNS and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stack.stop()
            receiver.close()
    return [at - _millis(event_id) / 1000 for event_id, at in receiver.arrivals.items()]


def _calls_per_delivered_event() -> Counter[str]:
    from moto.server import ThreadedMotoServer

    from chalicelib.local.moto_server import serialise_dynamodb

    serialise_dynamodb()
    # moto's server logs each request through werkzeug: not figures.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    receiver = _Receiver()
    try:
        os.environ.update(BENCH_ENV)
        os.environ.update(
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", SHIPYARD_ALLOW_PRIVATE_TARGETS="true"
        )
        from chalice.test import Client

        import app as handlers
        from chalicelib.accounts.workspaces import create_with_key
        from chalicelib.aws import queues
        from chalicelib.aws.clients import client, reset_clients
        from chalicelib.core.settings import get_settings
        from chalicelib.local.pump import sqs_event, stream_event
        from infra.provision import provision

        get_settings.cache_clear()
        reset_clients()
        queues.forget()
        provision("shipyard")
        _, key = create_with_key("Bench", "enterprise")
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        with Client(handlers.app) as api:
            hook = {"url": receiver.url, "events": ["project.created"]}
            api.http.post("/v1/webhooks", headers=headers, body=json.dumps(hook).encode())
            api.http.post("/v1/projects", headers=headers, body=b'{"name": "Counted"}')
        table = client("dynamodb").describe_table(TableName=get_settings().table("projects"))
        arn = table["Table"]["LatestStreamArn"]
        streams = client("dynamodbstreams")
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = [
            r
            for r in streams.get_records(ShardIterator=iterator)["Records"]
            if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["sk"]["S"].startswith("prj_")
        ]
        sqs = client("sqs")
        url = queues.url("webhook-deliveries")
        arn_of_queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        counter = CallCounter()
        totals: Counter[str] = Counter()
        with counter.count() as calls:
            handlers.on_projects_change(stream_event(records, arn), None)
        totals.update(calls)
        message = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]
        with counter.count() as calls:
            handlers.on_webhook_delivery(
                sqs_event(message, arn_of_queue["Attributes"]["QueueArn"]), None
            )
        totals.update(calls)
        assert len(receiver.arrivals) == 1, "the event was not delivered"
        return totals
    finally:
        receiver.close()
        server.stop()


def run() -> None:
    latencies = _latencies()
    show(
        f"deployment transition -> receiver hit, p50 (n={len(latencies)})  [target < 1 s]",
        f"{statistics.median(latencies) * 1000:.0f} ms",
    )
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]
    show("  p99", f"{p99 * 1000:.0f} ms")
    calls = _calls_per_delivered_event()

    def total(service: str) -> int:
        return sum(n for name, n in calls.items() if name.startswith(service + ":"))

    detail = ", ".join(f"{name.split(':')[1]} {n}" for name, n in sorted(calls.items()))
    show("calls per delivered event (1 endpoint): DynamoDB   [target <= 8]", str(total("dynamodb")))
    show("  SQS (the send; Lambda's receive and delete not counted)", str(total("sqs")))
    show("  KMS (the signing secret)", str(total("kms")))
    show("  each", detail)
