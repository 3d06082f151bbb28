"""Events from the tables' DynamoDB Streams and their webhook deliveries, on a moto server
(streams answer only in server mode), with the local pump handing stream records, queue
messages and the retry schedule to the app's own handlers. Receivers listen on loopback
ports and verify with the `standardwebhooks` library."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook as Verifier

from chalicelib.local.pump import scheduled_event
from tests.conftest import Api
from tests.integration.conftest import deploy_archive, wait_for
from tests.pipeline_support import targz
from tests.webhook_support import Receiver, Reply

STREAM_HANDLERS = ("on_projects_change", "on_deployments_change", "on_api_keys_change")


@pytest.fixture(autouse=True)
def fast_webhooks(monkeypatch):
    """Private targets allowed (receivers are on 127.0.0.1) and retries in fractions of a
    second."""
    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("SHIPYARD_ALLOW_PRIVATE_TARGETS", "true")
    monkeypatch.setenv("SHIPYARD_WEBHOOK_RETRY_SCHEDULE_S", "0.2,0.2,0.2,0.2,0.2,0.2,0.2")
    monkeypatch.setenv("SHIPYARD_WEBHOOK_TIMEOUT_S", "2")
    get_settings.cache_clear()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


def hook_on(api, url, events=("*",)) -> dict:
    response = api.post("/v1/webhooks", {"url": url, "events": list(events)})
    assert response.status_code == 201, response.json
    return response.json["data"]


def events_of(api, query="", wanted=1, timeout_s=15.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = api.get(f"/v1/events{query}").json["data"]
        if len(found) >= wanted or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def stream_records(table: str) -> list[dict]:
    """Every record of a table's stream so far, as the pump hands them over."""
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
        records += streams.get_records(ShardIterator=iterator)["Records"]
    return records


def hand_over(table: str, times: int = 1) -> None:
    """Run the app's stream handler of `table` on its whole stream, as a retried batch
    (each of its records `times` over, in the one batch)."""
    import app as handlers
    from chalicelib.local.pump import stream_event

    records = [record for record in stream_records(table) for _ in range(times)]
    arn = records[0]["eventSourceARN"] if records and "eventSourceARN" in records[0] else "x"
    getattr(handlers, f"on_{table}_change")(stream_event(records, arn), None)


def test_changes_make_one_event_each_listed_by_type_and_page(server_api, server_pump, receiver):
    api = server_api
    hook = hook_on(api, receiver.url, ["project.*", "api_key.*"])
    # When projects and keys are created and removed
    project = api.post("/v1/projects", {"name": "Shop"}).json["data"]
    key = api.post("/v1/api-keys", {"name": "ci", "scopes": ["projects:read"]}).json["data"]
    assert api.delete(f"/v1/api-keys/{key['id']}").status_code == 204
    assert api.delete(f"/v1/projects/{project['id']}").status_code == 204
    # Then each change is one event, newest first, with its data
    found = events_of(api, wanted=5)
    types = sorted(e["type"] for e in found)
    assert types == [
        "api_key.created",
        "api_key.created",  # the workspace's first key, made with it
        "api_key.revoked",
        "project.created",
        "project.deleted",
    ], found
    created = events_of(api, "?type=project.created")
    assert len(created) == 1
    assert created[0]["data"] == {"project_id": project["id"], "name": "Shop", "slug": "shop"}
    assert events_of(api, "?type=api_key.revoked")[0]["data"]["key_id"] == key["id"]
    # And pages of two chain to the same five, each once
    page = api.get("/v1/events?limit=2").json
    seen = [e["id"] for e in page["data"]]
    while page["pagination"]["has_more"]:
        cursor = page["pagination"]["next_cursor"]
        page = api.get(f"/v1/events?limit=2&cursor={cursor}").json
        seen += [e["id"] for e in page["data"]]
    assert seen == [e["id"] for e in found] and len(set(seen)) == 5
    assert seen == sorted(seen, reverse=True)
    assert api.get(f"/v1/events/{seen[0]}").json["data"]["id"] == seen[0]
    # And the endpoint got the four it asked for, signed, each event once
    hits = receiver.wait_for(4)
    time.sleep(0.5)
    assert len(receiver.hits) == 4
    verified = [Verifier(hook["secret"]).verify(h.body, h.headers) for h in hits]
    assert sorted(v["type"] for v in verified) == [
        "api_key.created",
        "api_key.revoked",
        "project.created",
        "project.deleted",
    ]
    assert {h.headers["webhook-id"] for h in hits} <= set(seen)


def test_a_handler_run_twice_makes_one_event_and_one_delivery(server_api, receiver):
    # Given changes in the stream, and no pump
    api = server_api
    hook = hook_on(api, receiver.url, ["project.created"])
    api.post("/v1/projects", {"name": "One"})
    # When the handler gets the same records twice (a retried batch)
    hand_over("projects")
    first = api.get("/v1/events?type=project.created").json["data"]
    hand_over("projects")
    # Then there is one event with the same id, and one delivery
    assert api.get("/v1/events?type=project.created").json["data"] == first
    assert [e["type"] for e in first] == ["project.created"]
    deliveries = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json["data"]
    assert len(deliveries) == 1 and deliveries[0]["event_id"] == first[0]["id"]


def test_one_batch_of_two_workspaces_changes_makes_each_event_once_for_its_own_webhooks(
    server_api, server_client, receiver
):
    """More changes than one write request holds (25), of two tenants, in one batch."""
    from chalicelib.accounts.workspaces import create_with_key

    _, other_key = create_with_key("Other", "pro")
    other, elsewhere = Api(server_client, other_key), Receiver()
    try:
        ours, theirs = hook_on(server_api, receiver.url), hook_on(other, elsewhere.url)
        for n in range(30):
            api = server_api if n % 3 else other
            assert api.post("/v1/projects", {"name": f"P{n}"}).status_code == 201
        # When the handler gets every change in one batch, then a batch of them all twice
        for times in (1, 2):
            hand_over("projects", times)
            # Then each workspace has an event per project of its own, made once
            our_events = server_api.get("/v1/events?limit=100").json["data"]
            their_events = other.get("/v1/events?limit=100").json["data"]
            assert [e["type"] for e in our_events] == ["project.created"] * 20
            assert [e["type"] for e in their_events] == ["project.created"] * 10
            # And a delivery of each to its own workspace's webhook only
            sides = ((server_api, ours, our_events), (other, theirs, their_events))
            for api, hook, listed in sides:
                made = api.get(f"/v1/webhooks/{hook['id']}/deliveries?limit=100").json["data"]
                assert sorted(d["event_id"] for d in made) == sorted(e["id"] for e in listed)
    finally:
        elsewhere.close()


def test_a_change_that_was_not_committed_makes_no_event(server_api):
    from tests.pipeline_support import multipart

    api = server_api
    project = api.post("/v1/projects", {"name": "Kept", "slug": "kept"}).json["data"]
    # When a write is refused (a taken slug) and a deployment is canceled before it built
    assert api.post("/v1/projects", {"name": "Again", "slug": "kept"}).status_code == 409
    content_type, body = multipart({"archive": ("a.tar.gz", targz({"index.html": "x"}))})
    made = api.post(
        f"/v1/projects/{project['id']}/deploy", body, headers={"Content-Type": content_type}
    ).json["data"]
    path = f"/v1/projects/{project['id']}/deployments/{made['id']}"
    assert api.post(path + "/cancel").status_code == 200
    assert api.post(path + "/cancel").status_code == 409
    hand_over("projects")
    hand_over("deployments")
    # Then the refused write made nothing, and each committed change made its one event
    assert len(api.get("/v1/events?type=project.created").json["data"]) == 1
    assert [e["data"]["deployment_id"] for e in events_of(api, "?type=deployment.created")] == [
        made["id"]
    ]
    canceled = api.get("/v1/events?type=deployment.canceled").json["data"]
    assert [e["data"]["status"] for e in canceled] == ["canceled"]


def test_an_event_is_not_lost_when_nothing_consumed_the_stream_or_its_handler_crashed(
    server_api, server_client, receiver, monkeypatch
):
    import app as handlers
    from chalicelib.local.pump import Pump

    api = server_api
    hook = hook_on(api, receiver.url, ["project.created"])
    # Given a change committed while no consumer ran (a crash right after the commit)
    project = api.post("/v1/projects", {"name": "Late"}).json["data"]
    assert api.get("/v1/events?type=project.created").json["data"] == []

    # And a handler that crashes after doing its work, the first time
    class Crashing:
        crashes = 0

        def __getattr__(self, name):
            return getattr(handlers, name)

        def on_projects_change(self, event, context):
            handlers.on_projects_change(event, context)
            if Crashing.crashes == 0:
                Crashing.crashes += 1
                raise RuntimeError("killed after the work, before the checkpoint")

    monkeypatch.setenv("SHIPYARD_SCHEDULE_INTERVAL_S", "0.5")
    pump = Pump(handlers.app, Crashing(), workers=4, poll_wait_s=1)
    pump.start()
    try:
        # When the consumer starts
        hit = receiver.wait_for(1)[0]
        time.sleep(1.5)
    finally:
        pump.stop()
    # Then the event exists once, and was delivered once
    assert Crashing.crashes == 1
    found = api.get("/v1/events?type=project.created").json["data"]
    assert [e["data"]["project_id"] for e in found] == [project["id"]]
    assert hit.headers["webhook-id"] == found[0]["id"]
    assert len(receiver.hits) == 1
    assert len(api.get(f"/v1/webhooks/{hook['id']}/deliveries").json["data"]) == 1


def test_build_events_carry_the_deployment(server_api, server_pump, receiver):
    api = server_api
    hook = hook_on(api, receiver.url, ["build.*", "deployment.created"])
    project = api.post("/v1/projects", {"name": "Site"}).json["data"]
    # When one deployment builds and another has an archive that fails its checks
    good = deploy_archive(api, project["id"], targz({"index.html": "<h1>hi</h1>"}))
    wait_for(api, good, ("built", "deploying", "running", "failed"))
    bad = deploy_archive(api, project["id"], b"not a tarball")
    failed = wait_for(api, bad, ("failed",))
    # Then the events say so, with the ids, number, status and error
    started = events_of(api, "?type=build.started", wanted=2)
    completed = events_of(api, "?type=build.completed")
    build_failed = events_of(api, "?type=build.failed")
    assert {e["data"]["deployment_id"] for e in started} == {good["id"], bad["id"]}
    done = completed[0]["data"]
    assert done["deployment_id"] == good["id"] and done["project_id"] == project["id"]
    assert done["number"] == 1 and done["status"] in ("built", "deploying", "running")
    fail = build_failed[0]["data"]
    assert fail["deployment_id"] == bad["id"] and fail["number"] == 2
    assert fail["status"] == "failed" and fail["error_code"] == failed["error_code"]
    assert fail["error_message"] == failed["error_message"]
    assert len(events_of(api, "?type=deployment.created", wanted=2)) == 2
    # And the endpoint got them, the build ones and the creations only
    hits = receiver.wait_for(5)
    types = {Verifier(hook["secret"]).verify(h.body, h.headers)["type"] for h in hits}
    assert types <= {"build.started", "build.completed", "build.failed", "deployment.created"}


def test_a_receiver_down_for_three_attempts_gets_the_event_once_back(server_api, server_pump):
    # Given a receiver that fails its first three answers
    receiver = Receiver(lambda n: Reply(503, b"down") if n <= 3 else Reply(200, b"thanks"))
    try:
        api = server_api
        hook = hook_on(api, receiver.url, ["project.created"])
        api.post("/v1/projects", {"name": "Retry"})
        # When the retries run
        hits = receiver.wait_for(4)
        time.sleep(1.0)
        # Then it got the same event four times under one webhook-id, and no fifth time
        assert len(receiver.hits) == 4
        assert len({h.headers["webhook-id"] for h in hits}) == 1
        for hit in hits:
            Verifier(hook["secret"]).verify(hit.body, hit.headers)
        delivery = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json["data"][0]
        assert delivery["status"] == "success" and delivery["attempt"] == 4
        assert delivery["response_code"] == 200 and delivery["next_retry_at"] is None
        attempts = delivery["attempts"]
        assert [a["attempt"] for a in attempts] == [4, 3, 2, 1]
        assert [a["response_code"] for a in attempts] == [200, 503, 503, 503]
        assert attempts[0]["response_body"] == "thanks"
        assert {a["trigger"] for a in attempts} == {"scheduled"}
        assert attempts[0]["next_retry_at"] is None
        assert all(a["next_retry_at"] for a in attempts[1:])
        endpoint = api.get(f"/v1/webhooks/{hook['id']}").json["data"]
        assert endpoint["success_count"] == 1 and endpoint["failure_count"] == 3
        assert endpoint["consecutive_failures"] == 0 and endpoint["last_delivery_at"]
        assert api.get(f"/v1/webhooks/{hook['id']}/deliveries?status=success").json["data"]
        assert api.get(f"/v1/webhooks/{hook['id']}/deliveries?status=failed").json["data"] == []
    finally:
        receiver.close()


def test_retries_run_out_then_a_manual_retry_sends_again(server_api, server_pump, monkeypatch):
    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("SHIPYARD_WEBHOOK_RETRY_SCHEDULE_S", "0.2")
    get_settings.cache_clear()
    answers = {"ok": False}
    receiver = Receiver(lambda n: Reply(200) if answers["ok"] else Reply(500, b"no"))
    try:
        api = server_api
        hook = hook_on(api, receiver.url, ["project.created"])
        api.post("/v1/projects", {"name": "Manual"})
        receiver.wait_for(2)
        path = f"/v1/webhooks/{hook['id']}/deliveries"
        deadline = time.monotonic() + 10
        while not api.get(path + "?status=failed").json["data"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        delivery = api.get(path + "?status=failed").json["data"][0]
        assert delivery["attempt"] == 2 and delivery["next_retry_at"] is None
        # When it is retried by hand, the receiver being back
        answers["ok"] = True
        retried = api.post(f"{path}/{delivery['id']}/retry")
        assert retried.status_code == 202, retried.json
        receiver.wait_for(3)
        deadline = time.monotonic() + 10
        while api.get(path).json["data"][0]["status"] != "success":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        done = api.get(path).json["data"][0]
        assert done["attempts"][0]["trigger"] == "manual" and done["attempt"] == 3
        # And a delivery that succeeded cannot be retried
        again = api.post(f"{path}/{delivery['id']}/retry")
        assert again.status_code == 400 and again.json["error"]["code"] == "cannot_retry"
        assert api.post(f"{path}/whd_nope/retry").status_code == 404
    finally:
        receiver.close()


def test_an_endpoint_that_answers_410_is_disabled_and_called_no_more(server_api, server_pump):
    receiver = Receiver(lambda _n: Reply(410, b"gone"))
    try:
        api = server_api
        hook = hook_on(api, receiver.url, ["project.created"])
        api.post("/v1/projects", {"name": "Gone"})
        receiver.wait_for(1)
        deadline = time.monotonic() + 10
        while api.get(f"/v1/webhooks/{hook['id']}").json["data"]["is_active"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        endpoint = api.get(f"/v1/webhooks/{hook['id']}").json["data"]
        assert endpoint["disabled_reason"] == "The endpoint answered 410 Gone"
        api.post("/v1/projects", {"name": "After"})
        events_of(api, "?type=project.created", wanted=2)
        time.sleep(1.0)
        assert len(receiver.hits) == 1
    finally:
        receiver.close()


def test_an_endpoint_failing_for_the_disable_period_is_disabled(
    server_api, server_pump, monkeypatch
):
    from chalicelib.core.settings import get_settings

    # The 5 days of production, as one second
    monkeypatch.setenv("SHIPYARD_WEBHOOK_DISABLE_AFTER_S", "1")
    get_settings.cache_clear()
    receiver = Receiver(lambda _n: Reply(500, b"broken"))
    try:
        api = server_api
        hook = hook_on(api, receiver.url, ["project.created"])
        api.post("/v1/projects", {"name": "Broken"})
        deadline = time.monotonic() + 15
        while api.get(f"/v1/webhooks/{hook['id']}").json["data"]["is_active"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        endpoint = api.get(f"/v1/webhooks/{hook['id']}").json["data"]
        assert endpoint["disabled_reason"] == "Every delivery failed for 1 seconds"
        assert endpoint["consecutive_failures"] >= 2
        calls = len(receiver.hits)
        time.sleep(1.0)
        assert len(receiver.hits) == calls
    finally:
        receiver.close()


def test_a_message_delivered_twice_and_two_sweeps_at_once_send_once(
    server_api, receiver, monkeypatch
):
    import app as handlers
    from chalicelib.core.settings import get_settings
    from chalicelib.store import webhooks as store

    monkeypatch.setenv("SHIPYARD_WEBHOOK_CLAIM_S", "0.3")
    get_settings.cache_clear()
    receiver.answer = lambda _n: Reply(200, hang_s=0.3)
    api = server_api
    hook = hook_on(api, receiver.url, ["project.created"])
    api.post("/v1/projects", {"name": "Twice"})
    hand_over("projects")
    delivery = store.list_deliveries(hook["id"], None, 10, None)[0][0]
    # When its message arrives twice at once, and two sweeps run at once when it is due
    # (each claim lasting longer than any attempt on this busy machine)
    time.sleep(0.4)
    monkeypatch.setenv("SHIPYARD_WEBHOOK_CLAIM_S", "30")
    get_settings.cache_clear()
    message = {"webhook_id": hook["id"], "delivery_id": delivery["id"], "attempt": 0}
    sqs_event = server_pump_free_sqs_event(message)
    tick = scheduled_event("retry_webhooks")
    runners = [
        threading.Thread(target=handlers.on_webhook_delivery, args=(sqs_event, None)),
        threading.Thread(target=handlers.on_webhook_delivery, args=(sqs_event, None)),
        threading.Thread(target=handlers.retry_webhooks, args=(tick, None)),
        threading.Thread(target=handlers.retry_webhooks, args=(tick, None)),
    ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(10)
    # Then the receiver got it once
    assert len(receiver.hits) == 1
    done = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json["data"][0]
    assert done["status"] == "success" and done["attempt"] == 1


def server_pump_free_sqs_event(message: dict) -> dict:
    import json

    from chalicelib.local.pump import sqs_event

    raw = {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": json.dumps(message)}
    return sqs_event(raw, "arn:aws:sqs:us-east-1:123456789012:shipyard-webhook-deliveries")


def test_a_worker_killed_between_send_and_record_sends_again_under_the_same_id(
    server_api, receiver, monkeypatch
):
    import app as handlers
    from chalicelib.core.clock import precise
    from chalicelib.core.settings import get_settings
    from chalicelib.events import service as events
    from chalicelib.store import webhooks as store
    from chalicelib.webhooks import deliveries

    monkeypatch.setenv("SHIPYARD_WEBHOOK_CLAIM_S", "0.5")
    get_settings.cache_clear()
    api = server_api
    hook = hook_on(api, receiver.url, ["project.created"])
    api.post("/v1/projects", {"name": "Killed"})
    hand_over("projects")
    delivery = store.list_deliveries(hook["id"], None, 10, None)[0][0]
    # Given a worker that claimed the delivery and sent it, then died before recording
    until = precise(datetime.now(UTC) + timedelta(seconds=0.5))
    assert store.claim(hook["id"], delivery["id"], 0, precise(), until, "dead-worker")
    endpoint = store.get_endpoint(api.workspace_id, hook["id"])
    event = events.find(api.workspace_id, delivery["event_id"])
    assert deliveries.send(endpoint, event).status == 200
    # When the retry schedule runs after the claim ran out
    time.sleep(0.7)
    handlers.retry_webhooks(scheduled_event("retry_webhooks"), None)
    # Then the receiver got it again under the same webhook-id (and dedupes by it)
    hits = receiver.wait_for(2)
    assert hits[0].headers["webhook-id"] == hits[1].headers["webhook-id"] == event["id"]
    done = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json["data"][0]
    assert done["status"] == "success" and done["attempt"] == 1


class CountingReads:
    """The app's handlers, counting the records of each read of the projects stream."""

    def __init__(self) -> None:
        import app as handlers

        self.handlers = handlers
        self.batches: list[tuple[float, int]] = []  # (when, how many records)

    def __getattr__(self, name):
        return getattr(self.handlers, name)

    def on_projects_change(self, event, context):
        self.batches.append((time.monotonic(), len(event["Records"])))
        self.handlers.on_projects_change(event, context)


@pytest.fixture
def projects_pump(monkeypatch):
    """The pump on the projects stream alone, where a stream with nothing new is read again
    only when this process writes to its table (the idle re-read is put off by a minute)."""
    import app as handlers
    from chalicelib.local import pump as module

    monkeypatch.setattr(module, "STREAM_IDLE_S", 60.0)
    counting = CountingReads()
    pump = module.Pump(handlers.app, counting, workers=4, only=("on_projects_change",))
    pump.start()
    # Its first pass over the stream is done (it hooks the client just before reading).
    deadline = time.monotonic() + 10
    while not pump._hooked:
        assert time.monotonic() < deadline, "the pump never read the stream"
        time.sleep(0.02)
    time.sleep(0.3)
    yield counting
    pump.stop()


def test_a_change_is_read_at_once_after_a_quiet_spell(server_api, projects_pump):
    api = server_api
    written = time.monotonic()
    api.post("/v1/projects", {"name": "Quiet"})

    deadline = written + 5
    while not projects_pump.batches:
        assert time.monotonic() < deadline, "the write did not wake the stream's reader"
        time.sleep(0.02)
    assert projects_pump.batches[0][0] - written < 1.0


def test_a_steady_flow_of_changes_is_read_in_batches_and_every_event_is_made(
    server_api, projects_pump
):
    """A project created every 100 ms for 2 s: the pump reads the stream at once after a
    quiet spell, then a batch at a time (every STREAM_BUSY_S while records keep coming), not
    each change as it comes; and every creation becomes its event."""
    from chalicelib.local.pump import STREAM_BUSY_S

    api = server_api
    created = []
    started = time.monotonic()
    for n in range(20):
        created.append(api.post("/v1/projects", {"name": f"p{n}"}).json["data"])
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    events = events_of(api, "?type=project.created&limit=100", wanted=len(created))

    assert {e["data"]["project_id"] for e in events} == {p["id"] for p in created}
    # Two records a change (the project and its slug's claim); a read every STREAM_BUSY_S
    # while they come, with the first read of the quiet stream: not a read per change.
    batches = [count for _, count in projects_pump.batches]
    assert sum(batches) >= len(created)
    assert len(batches) <= elapsed / STREAM_BUSY_S + 2, (batches, elapsed)
    assert len(batches) < len(created) * 0.7, batches
