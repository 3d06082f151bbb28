"""Every consumer given a duplicate and an out-of-order message: the outcome is that of one
delivery in order (no second build, no second event or webhook call, no status going back).

The queue consumers get theirs on the local stack itself: the test sends the extra messages
to the stack's real queues, and its pump hands them to the app's handlers. The stream
handlers and CodeBuild's state-change handler get theirs in this process, through the app's
own decorated handlers, on the stack's moto (records read back from the real streams).
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.faults.test_kills import archive, deploy, ended, logs, serves
from tests.waiting import eventually
from tests.webhook_support import Receiver

pytestmark = pytest.mark.xdist_group("fault-stack")


@pytest.fixture(scope="module")
def receiver():
    running = Receiver()
    yield running
    running.close()


@pytest.fixture(scope="module")
def setup(fault_stack, receiver):
    """A project with a running deployment, and a webhook of deployment events."""
    stack = fault_stack.stack
    status, _, hook = stack.request(
        "POST", "/v1/webhooks", {"url": receiver.url, "events": ["deployment.*"]}
    )
    assert status == 201, hook
    status, _, body = stack.request(
        "POST",
        "/v1/projects",
        {"name": f"redelivered-{uuid.uuid4().hex[:6]}", "build": {"build_command": "sh build.sh"}},
    )
    assert status == 201, body
    project = body["data"]
    deployment = ended(stack, deploy(stack, project["id"], archive("app-first")))
    assert deployment["status"] == "running", deployment
    return {"project": project, "deployment": deployment, "name": "app-first", "hook": hook["data"]}


@pytest.fixture
def here(fault_stack, monkeypatch, tmp_path):
    """This process's AWS clients on the stack's moto (behind the proxy), as the stack's."""
    from chalicelib.aws.clients import reset_clients
    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{fault_stack.proxy.port}")
    monkeypatch.setenv("SHIPYARD_STAGE", "local")
    monkeypatch.setenv("SHIPYARD_STATE_DIR", str(tmp_path))
    get_settings.cache_clear()
    reset_clients()
    yield
    reset_clients()
    get_settings.cache_clear()


def send(queue: str, message: dict) -> None:
    from chalicelib.aws import queues

    queues.send(queue, message)


def drained(*queue_names: str) -> None:
    """Wait until the stack's pump has taken and finished every message of these queues."""
    from chalicelib.aws import queues
    from chalicelib.aws.clients import client

    def empty():
        for name in queue_names:
            found = client("sqs").get_queue_attributes(
                QueueUrl=queues.url(name),
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            if any(int(value) for value in found.values()):
                return False
        return True

    eventually(empty, 30, f"{queue_names} to be drained")


def status_of(stack, item: dict) -> dict:
    status, _, body = stack.request(
        "GET", f"/v1/projects/{item['project_id']}/deployments/{item['id']}"
    )
    assert status == 200, body
    return body["data"]


def test_builds_queue(fault_stack, setup, here, record):
    stack = fault_stack.stack
    running = setup["deployment"]
    message = {"kind": "build", "project_id": running["project_id"], "deployment_id": running["id"]}
    # Out of order: the build message of a deployment that has long been built and runs.
    send("builds", message)
    # Duplicate: a new deployment's build message, twice.
    fresh = deploy(stack, running["project_id"], archive("app-second"))
    send("builds", {**message, "deployment_id": fresh["id"]})
    drained("builds")
    assert ended(stack, fresh)["status"] == "running"
    assert status_of(stack, running)["status"] == "stopped"  # replaced, not built again
    for item in (running, fresh):
        assert logs(stack, item).count("Building (local)") == 1
    record("builds queue: duplicate", "1 build")
    record("builds queue: out of order", "no build, status kept")
    setup.update(deployment=fresh, name="app-second")


def test_deploy_tasks_queue(fault_stack, setup, here, record):
    stack = fault_stack.stack
    running = setup["deployment"]
    before = logs(stack, running)
    base = {"project_id": running["project_id"], "deployment_id": running["id"]}
    # Out of order: each step's task again after promotion (a redelivery after its workflow
    # moved on, so its token is no longer waited for), and a late MarkFailed.
    for step in ("deploy", "health_check", "promote", "promote"):
        send("deploy-tasks", {**base, "step": step, "task_token": f"stale-{step}"})
    send(
        "deploy-tasks",
        {
            **base,
            "step": "mark_failed",
            "task_token": "stale",
            "error": {"Error": "States.Timeout"},
        },
    )
    drained("deploy-tasks")
    assert status_of(stack, running)["status"] == "running"
    after = logs(stack, running)
    assert after.count("Running at") == before.count("Running at") == 1, after
    _, _, project = stack.request("GET", f"/v1/projects/{running['project_id']}")
    assert project["data"]["current_deployment_id"] == running["id"]
    serves(project["data"]["url"], running["id"], setup["name"])
    record("deploy tasks: duplicate promote", "running, 1 promotion")
    record("deploy tasks: out of order (deploy, health check, mark failed)", "running, app kept")


def _deliveries(stack, hook_id: str) -> list[dict]:
    status, _, body = stack.request("GET", f"/v1/webhooks/{hook_id}/deliveries?limit=100")
    assert status == 200, body
    return body["data"]


def test_webhook_deliveries_queue(fault_stack, setup, receiver, here, record):
    stack = fault_stack.stack
    hook = setup["hook"]
    eventually(
        lambda: (d := _deliveries(stack, hook["id"])) and all(x["status"] == "success" for x in d),
        30,
        "the deliveries to succeed",
    )
    delivered = _deliveries(stack, hook["id"])
    hits = len(receiver.hits)
    assert hits == len(delivered)
    for delivery in delivered[:3]:
        message = {"webhook_id": hook["id"], "delivery_id": delivery["id"], "attempt": 1}
        send("webhook-deliveries", message)  # a duplicate of the first attempt
        send("webhook-deliveries", {**message, "attempt": 0})  # older than any attempt
    drained("webhook-deliveries")
    time.sleep(0.5)
    assert len(receiver.hits) == hits
    assert [d["status"] for d in _deliveries(stack, hook["id"])] == ["success"] * len(delivered)
    record("webhook deliveries: duplicate", "sent once")
    record("webhook deliveries: out of order", "sent once")


def _stream_records(table: str) -> tuple[str, list[dict]]:
    from chalicelib.aws.clients import client
    from chalicelib.core.settings import get_settings

    arn = client("dynamodb").describe_table(TableName=get_settings().table(table))["Table"][
        "LatestStreamArn"
    ]
    streams = client("dynamodbstreams")
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return arn, records


def _event_ids(stack) -> list[str]:
    ids, cursor = [], ""
    while True:
        status, _, body = stack.request("GET", f"/v1/events?limit=100{cursor}")
        assert status == 200, body
        ids += [event["id"] for event in body["data"]]
        if not body["pagination"]["has_more"]:
            return ids
        cursor = f"&cursor={body['pagination']['next_cursor']}"


@pytest.mark.parametrize("table", ["projects", "deployments", "api_keys"])
def test_stream_handlers(table, fault_stack, setup, receiver, here, record):
    import app as handlers
    from chalicelib.local.pump import stream_event

    stack = fault_stack.stack
    handler = getattr(handlers, f"on_{table}_change")
    arn, records = _stream_records(table)
    assert records
    # The stack's pump has handed every record over already.
    eventually(lambda: _event_ids(stack) == _event_ids(stack), 10, "events to settle")
    events, hits = sorted(_event_ids(stack)), len(receiver.hits)
    handler(stream_event(records, arn), None)  # every record again: a retried batch
    handler(stream_event(records[::-1], arn), None)  # and again, newest first
    drained("webhook-deliveries")
    assert sorted(_event_ids(stack)) == events
    assert len(receiver.hits) == hits
    record(f"{table} stream: duplicate", "events and deliveries once")
    record(f"{table} stream: out of order", "events and deliveries once")


def test_codebuild_state_changes(fault_stack, setup, here, record):
    import app as handlers
    from chalicelib.store import deployments as store
    from tests.codebuild_support import state_change

    stack = fault_stack.stack
    project_id = setup["project"]["id"]
    # A deployment building on CodeBuild: the local stack builds locally, so its build is
    # named as CodeBuild's (a short local build whose own end comes later, out of order).
    item = deploy(stack, project_id, archive("app-codebuild", build_sleep_s=3))
    eventually(lambda: status_of(stack, item)["status"] == "building", 30, "building")
    build_id = f"shipyard-build:{uuid.uuid4()}"
    assert store.set_fields(project_id, item["id"], {"build_id": build_id}, ("building",))
    variables = [{"name": "SHIPYARD_DEPLOYMENT_ID", "value": item["id"], "type": "PLAINTEXT"}]
    failed = state_change("FAILED", build_id, variables=variables)
    handlers.on_codebuild_state_change(failed, None)
    handlers.on_codebuild_state_change(failed, None)  # duplicate
    for late in ("IN_PROGRESS", "SUCCEEDED"):  # older news, after the end
        handlers.on_codebuild_state_change(state_change(late, build_id, variables), None)
    time.sleep(4)  # the local build ends too, later still
    final = status_of(stack, item)
    assert final["status"] == "failed", final
    assert final["error_code"] == "build_failed", final
    record("codebuild state change: duplicate", "failed once")
    record("codebuild state change: out of order", "stays failed")
