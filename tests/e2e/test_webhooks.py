"""A newcomer's webhook on the real local stack: an endpoint pointed at a receiver on
127.0.0.1 gets a deployment's events as it builds and goes live, each verified with the
`standardwebhooks` library, and `GET /v1/events` lists the same."""

from __future__ import annotations

import time

from standardwebhooks import Webhook as Verifier

from tests.e2e.test_pipeline import EXAMPLES, deploy, pack, wait
from tests.webhook_support import Receiver


def test_a_deployments_events_arrive_at_a_local_receiver(cli_stack):
    stack = cli_stack
    receiver = Receiver()
    try:
        # Given an endpoint on a local receiver, for the deployment's events
        status, _, made = stack.request(
            "POST",
            "/v1/webhooks",
            {"url": receiver.url, "events": ["deployment.*", "build.*", "deploy.*"]},
        )
        assert status == 201, made
        secret = made["data"]["secret"]
        _, _, project = stack.request("POST", "/v1/projects", {"name": "Hooked"})
        # When a deployment goes live
        deployment = deploy(stack, project["data"]["id"], pack(EXAMPLES / "static-site"))
        assert wait(stack, deployment)["status"] == "running"
        # Then its four events arrive, signed, each once (event ids sort as they happened;
        # deliveries are sent in parallel, so arrival order is not promised)
        hits = receiver.wait_for(4, timeout_s=30)
        time.sleep(1)
        by_id = {h.headers["webhook-id"]: h for h in receiver.hits}
        payloads = [Verifier(secret).verify(by_id[i].body, by_id[i].headers) for i in sorted(by_id)]
        mine = [p for p in payloads if p["data"]["deployment_id"] == deployment["id"]]
        assert [p["type"] for p in mine] == [
            "deployment.created",
            "build.started",
            "build.completed",
            "deploy.completed",
        ]
        assert len(by_id) == len(receiver.hits)
        live = mine[-1]["data"]
        assert live["status"] == "running" and live["number"] == 1
        assert live["project_id"] == project["data"]["id"]
        # And the events list holds the same events
        _, _, listed = stack.request("GET", "/v1/events?type=deploy.completed")
        assert listed["data"][0]["data"] == live
        assert listed["data"][0]["id"] in {h.headers["webhook-id"] for h in hits}
    finally:
        receiver.close()
