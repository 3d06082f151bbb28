"""The local pump: what AWS does for the app's event handlers, done in the local stack's
process.

- Every `app.on_sqs_message` queue is long-polled; each message is handed to the app's own
  decorated handler as a Chalice SQS event (one record per call, like batch size 1), on a
  worker thread. A handler that returns has its message deleted; one that raises leaves it
  to come back after the queue's visibility timeout, as Lambda's event source mapping would.
  The messages being handled are noted in the state directory (InFlight): a stack killed
  mid-message hands them back when it starts again, at once, instead of after the
  visibility timeout (minutes for the deploy tasks).
- Every `app.on_dynamodb_record` handler gets its table's stream, read from moto server's
  DynamoDB Streams (app.py names a stream by its table): each shard's records, in order,
  as the Chalice DynamoDB event Lambda would deliver, read as soon as this process has
  written to that table rather than polled a few times a second. A shard's checkpoint (the last
  sequence number whose handler returned, kept in the state directory) moves only when the
  handler succeeds; one that raises gets the same records again, as Lambda retries a batch.
- Every `app.schedule` handler is fired on its `rate(...)` schedule (EventBridge schedules
  never fire on moto). SHIPYARD_SCHEDULE_INTERVAL_S overrides every rate (tests).
- Build engines and runtimes need no pumping: LocalBuilder and LocalProcessRuntime run in
  this process, started by the handlers (pipeline/engines.py).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.aws.clients import client
from chalicelib.core.log import logger
from chalicelib.core.settings import get_settings, state_dir

STREAM_TABLE = re.compile(r":table/([^/]+)/stream/")
# A stream is read again at once after this process writes to its table (every write of
# the local stack's is), and otherwise every STREAM_IDLE_S, for writes made elsewhere
# (another process on the same moto).
STREAM_IDLE_S = 0.5
STREAM_MIN_S = 0.02  # between two reads of a stream, so a burst of writes is read in batches
# After a read that found records (but not a full batch), the next waits this long, as
# Lambda polls a shard four times a second: under a steady flow of writes each read takes
# a batch of them, where reading after every write took them one at a time (three AWS
# calls per record: the read, the events' write, the webhooks' query).
STREAM_BUSY_S = 0.25
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
STREAM_DESCRIBE_S = 10.0
STREAM_BATCH = 100
RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days|second|seconds)\)$")
UNIT_S = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    match = RATE.match(expression.strip())
    if not match:
        raise ValueError(f"Only rate(...) schedules run locally, not {expression!r}")
    return int(match.group(1)) * UNIT_S[match.group(2).rstrip("s")]


def sqs_event(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source would deliver for one message."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3],
            }
        ]
    }


def stream_event(records: list[dict[str, Any]], stream_arn: str) -> dict[str, Any]:
    """The event Lambda's DynamoDB event source would deliver for these records."""
    converted = []
    for record in records:
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if hasattr(created, "timestamp"):
            change["ApproximateCreationDateTime"] = created.timestamp()
        converted.append({**record, "dynamodb": change, "eventSourceARN": stream_arn})
    return {"Records": converted}


class Checkpoints:
    """The last sequence number handled per stream shard, kept in the state directory so
    a restarted stack on the same moto data resumes after it."""

    def __init__(self) -> None:
        self.path = state_dir() / "stream-checkpoints.json"
        self._lock = threading.Lock()
        try:
            self._done: dict[str, str] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self._done = {}

    def get(self, shard: str) -> str | None:
        return self._done.get(shard)

    def set(self, shard: str, sequence: str) -> None:
        with self._lock:
            self._done[shard] = sequence
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(self._done))
            temporary.replace(self.path)


class InFlight:
    """The receipt handles of the messages this pump is handling, by queue URL, kept in the
    state directory. What a killed process left there is made visible again on start, so
    each of those messages is handled again now (every consumer is idempotent)."""

    def __init__(self) -> None:
        self.path = state_dir() / "inflight-messages.json"
        self._lock = threading.Lock()
        try:
            self._held: dict[str, str] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self._held = {}

    def hand_back(self) -> int:
        """Make the messages a previous process held visible again; how many were."""
        with self._lock:
            held, self._held = self._held, {}
            self._save()
        sqs = client("sqs")
        returned = 0
        for receipt, url in held.items():
            try:
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0
                )
                returned += 1
            except Exception:
                # Deleted or received again meanwhile: nothing to hand back.
                logger().info("An in-flight message was already gone", extra={"queue_url": url})
        return returned

    def add(self, receipt: str, url: str) -> None:
        with self._lock:
            self._held[receipt] = url
            self._save()

    def remove(self, receipt: str) -> None:
        with self._lock:
            if self._held.pop(receipt, None) is not None:
                self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._held))
        temporary.replace(self.path)


def scheduled_event(name: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{name}"],
        "detail": {},
    }


class Pump:
    def __init__(
        self,
        app: Any,
        handlers: Any,
        workers: int = 8,
        poll_wait_s: int = 1,
        only: tuple[str, ...] | None = None,
    ) -> None:
        """`handlers` is the module that defines the app's decorated handlers (`app`);
        `only` names the handlers to serve (default: all)."""
        self.app = app
        self.handlers = handlers
        self.only = only
        self.poll_wait_s = poll_wait_s
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="pump")
        self._slots = threading.BoundedSemaphore(workers)
        self._threads: list[threading.Thread] = []
        self._checkpoints = Checkpoints()
        self._in_flight = InFlight()
        self._written: dict[str, threading.Event] = {}  # table name -> its reader's
        self._hooked: dict[int, Any] = {}  # the DynamoDB clients that tell of their writes
        self._hook_id = f"pump-{id(self)}"

    def start(self) -> None:
        from chalice.app import DynamoDBEventConfig, ScheduledEventConfig, SQSEventConfig

        try:
            if returned := self._in_flight.hand_back():
                logger().info("Messages handed back after a restart", extra={"count": returned})
        except Exception:
            logger().exception("Could not hand back the messages of a previous run")

        for source in self.app.event_sources:
            if self.only is not None and source.name not in self.only:
                continue
            handler = getattr(self.handlers, source.name)
            if isinstance(source, SQSEventConfig):
                target, args = self._poll, (source.queue, handler)
            elif isinstance(source, DynamoDBEventConfig):
                table = STREAM_TABLE.search(source.stream_arn).group(1)
                target, args = self._stream, (table, handler)
            elif isinstance(source, ScheduledEventConfig):
                target, args = self._schedule, (source.name, source.schedule_expression, handler)
            else:
                continue
            thread = threading.Thread(
                target=target, args=args, name=f"pump-{source.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _tables(
        self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        """Before a DynamoDB write: note the tables it writes to."""
        if model.name not in WRITES:
            return
        names = {params.get("TableName")} | set(params.get("RequestItems") or ())
        for entry in params.get("TransactItems") or ():
            names |= {op.get("TableName") for op in entry.values() if isinstance(op, dict)}
        context["shipyard_tables"] = names

    def _wrote(self, context: dict[str, Any], **_: Any) -> None:
        """After a DynamoDB call: wake the readers of the streams of what it wrote."""
        for name in context.get("shipyard_tables", ()):
            if (written := self._written.get(name)) is not None:
                written.set()

    def _hooks(self) -> tuple[tuple[str, Any], ...]:
        return (
            ("before-parameter-build.dynamodb", self._tables),
            ("after-call.dynamodb", self._wrote),
        )

    def _hook(self, ddb: Any) -> None:
        """Have this DynamoDB client (the process's, remade after reset_clients) tell the
        stream readers of its writes (idempotent)."""
        if id(ddb) in self._hooked:
            return
        self._hooked[id(ddb)] = ddb
        events = ddb.meta.events
        # One unique_id per handler: botocore keeps a unique_id once, whatever the event,
        # so a second handler under the same id would be dropped without a word.
        for event, handler in self._hooks():
            events.register(event, handler, unique_id=f"{self._hook_id}-{event}")

    def stop(self) -> None:
        self._stopping.set()
        for written in self._written.values():
            written.set()
        for ddb in self._hooked.values():
            for event, _ in self._hooks():
                ddb.meta.events.unregister(event, unique_id=f"{self._hook_id}-{event}")
        for thread in self._threads:
            thread.join(self.poll_wait_s + 5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _poll(self, queue: str, handler: Any) -> None:
        sqs = client("sqs")
        while not self._stopping.is_set():
            try:
                url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                    "Attributes"
                ]["QueueArn"]
                break
            except Exception:
                logger().exception("Queue not reachable yet", extra={"queue": queue})
                self._stopping.wait(1)
        else:
            return
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=self.poll_wait_s):
                continue
            try:
                found = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=self.poll_wait_s,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                self._slots.release()
                if not self._stopping.is_set():
                    logger().exception("Polling failed", extra={"queue": queue})
                    self._stopping.wait(1)
                continue
            if not found:
                self._slots.release()
                continue
            self._in_flight.add(found[0]["ReceiptHandle"], url)
            try:
                self._pool.submit(self._deliver, url, arn, found[0], handler)
            except RuntimeError:
                self._in_flight.remove(found[0]["ReceiptHandle"])
                self._slots.release()  # the pool is shutting down; the message comes back

    def _deliver(self, url: str, arn: str, message: dict[str, Any], handler: Any) -> None:
        try:
            handler(sqs_event(message, arn), None)
        except Exception:
            logger().exception("A queue handler failed; the message will come back")
        else:
            try:
                client("sqs").delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            except Exception:
                # Delivered again meanwhile (a long handler): that delivery's handler
                # deletes it, and the consumers are idempotent.
                logger().info("Message already gone", extra={"queue_url": url})
        finally:
            self._in_flight.remove(message["ReceiptHandle"])
            self._slots.release()

    def _stream(self, table: str, handler: Any) -> None:
        """Hand `table`'s stream to `handler`, shard by shard, each in order."""
        ddb, streams = client("dynamodb"), client("dynamodbstreams")
        written = self._written.setdefault(get_settings().table(table), threading.Event())
        checkpoints = self._checkpoints
        iterators: dict[str, str | None] = {}
        failing = False
        arn, shards, described_at = None, [], 0.0
        while not self._stopping.is_set():
            try:
                # The stream and its shards are looked up again now and then (a new shard
                # appears as a stream ages), not on every poll: polls are a few a second.
                if arn is None or time.monotonic() - described_at > STREAM_DESCRIBE_S:
                    arn = ddb.describe_table(TableName=get_settings().table(table))["Table"][
                        "LatestStreamArn"
                    ]
                    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
                    described_at = time.monotonic()
                self._hook(client("dynamodb"))
                busy = full = False
                written.clear()
                for shard in shards:
                    key = f"{arn}|{shard['ShardId']}"
                    if iterators.get(key) is None:
                        iterators[key] = self._iterator(streams, arn, shard, checkpoints.get(key))
                    if iterators[key] is None:
                        continue
                    found = streams.get_records(ShardIterator=iterators[key], Limit=STREAM_BATCH)
                    records = found.get("Records", [])
                    if records:
                        busy = True
                        full = full or len(records) >= STREAM_BATCH
                        try:
                            handler(stream_event(records, arn), None)
                        except Exception:
                            logger().exception("A stream handler failed; its records come again")
                            iterators[key] = None
                            self._stopping.wait(1)
                            continue
                        checkpoints.set(key, records[-1]["dynamodb"]["SequenceNumber"])
                    iterators[key] = found.get("NextShardIterator")
                failing = False
            except Exception:
                # Logged when it starts failing, not every second until it stops (moto's
                # in-process mock, which some tests use, has no streams to read).
                if not self._stopping.is_set() and not failing:
                    logger().exception("Reading a stream failed", extra={"table": table})
                failing = True
                iterators.clear()
                arn = None
                self._stopping.wait(1)
                continue
            if not busy:
                written.wait(STREAM_IDLE_S)
                self._stopping.wait(STREAM_MIN_S)
            elif not full:
                self._stopping.wait(STREAM_BUSY_S)

    @staticmethod
    def _iterator(streams: Any, arn: str, shard: dict[str, Any], after: str | None) -> str | None:
        kwargs: dict[str, Any] = {"StreamArn": arn, "ShardId": shard["ShardId"]}
        if after:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        return streams.get_shard_iterator(**kwargs).get("ShardIterator")

    def _schedule(self, name: str, expression: Any, handler: Any) -> None:
        override = os.environ.get("SHIPYARD_SCHEDULE_INTERVAL_S")
        text = expression if isinstance(expression, str) else expression.to_string()
        interval = float(override) if override else rate_seconds(text)
        while not self._stopping.wait(interval):
            try:
                handler(scheduled_event(name), None)
            except Exception:
                logger().exception("A scheduled handler failed", extra={"handler": name})
