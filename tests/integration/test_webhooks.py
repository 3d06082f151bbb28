"""Webhook endpoints through HTTP on moto's in-process AWS: CRUD, secrets, filters, scopes,
tenants, the SSRF guard, and test sends to a receiver on a loopback port, verified with the
`standardwebhooks` library as a receiver would."""

from __future__ import annotations

import base64
import json

import pytest
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from tests.webhook_support import Receiver, Reply

PUBLIC = "https://93.184.215.14/hook"


@pytest.fixture
def private_allowed(monkeypatch):
    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("SHIPYARD_ALLOW_PRIVATE_TARGETS", "true")
    monkeypatch.setenv("SHIPYARD_WEBHOOK_TIMEOUT_S", "1")
    get_settings.cache_clear()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


def create(api, url=PUBLIC, events=("deploy.*", "project.created"), **extra):
    return api.post("/v1/webhooks", {"url": url, "events": list(events), **extra})


def test_crud_shows_the_secret_once_and_counters_always(api):
    # When an endpoint is created
    created = create(api, description="CI")
    assert created.status_code == 201, created.json
    hook = created.json["data"]
    # Then its secret is whsec_ + base64 of 32 bytes, in this response only
    assert hook["secret"].startswith("whsec_")
    assert len(base64.b64decode(hook["secret"].removeprefix("whsec_"))) == 32
    assert hook["id"].startswith("wh_")
    fetched = api.get(f"/v1/webhooks/{hook['id']}").json["data"]
    assert "secret" not in fetched
    assert fetched["events"] == ["deploy.*", "project.created"]
    for counter in ("success_count", "failure_count", "consecutive_failures"):
        assert fetched[counter] == 0
    assert fetched["is_active"] is True and fetched["disabled_reason"] is None
    assert fetched["last_delivery_at"] is None
    assert [h["id"] for h in api.get("/v1/webhooks").json["data"]] == [hook["id"]]
    # And it can be changed, turned off and deleted
    patched = api.patch(f"/v1/webhooks/{hook['id']}", {"events": ["*"], "is_active": False})
    assert patched.status_code == 200
    assert patched.json["data"]["events"] == ["*"]
    assert patched.json["data"]["is_active"] is False
    assert patched.json["data"]["disabled_reason"] == "Disabled by a user"
    on = api.patch(f"/v1/webhooks/{hook['id']}", {"is_active": True}).json["data"]
    assert on["is_active"] is True and on["disabled_reason"] is None
    assert api.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
    assert api.get(f"/v1/webhooks/{hook['id']}").status_code == 404


@pytest.mark.parametrize(
    "events",
    [["nope"], ["nope.*"], [], ["deploy.*", "build"], ["project.created.*"]],
)
def test_an_unknown_event_filter_is_refused(api, events):
    response = create(api, events=events)
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "validation_failed"


def test_filters_exact_prefix_and_star_are_accepted(api):
    response = create(api, events=["*", "build.*", "api_key.revoked", "webhook.test"])
    assert response.status_code == 201, response.json


def test_scopes_webhooks_read_and_write(api):
    key = api.post("/v1/api-keys", {"name": "ro", "scopes": ["webhooks:read"]}).json["data"]
    assert api.get("/v1/webhooks", key=key["key"]).status_code == 200
    refused = create(api.__class__(api.client, key["key"]))
    assert refused.status_code == 403
    assert refused.json["error"]["details"]["required_scope"] == "webhooks:write"
    other = api.post("/v1/api-keys", {"name": "p", "scopes": ["projects:read"]}).json["data"]
    assert api.get("/v1/webhooks", key=other["key"]).status_code == 403
    assert api.get("/v1/events", key=other["key"]).status_code == 403


def test_another_workspaces_webhook_delivery_and_event_are_404(
    api, client, make_workspace, private_allowed, receiver
):
    # Given an endpoint of one workspace that has a delivery and an event
    hook = create(api, url=receiver.url).json["data"]
    assert api.post(f"/v1/webhooks/{hook['id']}/test").json["data"]["success"] is True
    delivery = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json["data"][0]
    event = api.get("/v1/events").json["data"][0]
    # When another workspace asks for them, by every route
    _, key = make_workspace("Other")
    other = api.__class__(client, key)
    base = f"/v1/webhooks/{hook['id']}"
    # Then each is 404, and nothing of theirs is listed
    for method, path in [
        ("GET", base),
        ("PATCH", base),
        ("DELETE", base),
        ("POST", base + "/test"),
        ("POST", base + "/rotate-secret"),
        ("GET", base + "/deliveries"),
        ("POST", f"{base}/deliveries/{delivery['id']}/retry"),
        ("GET", f"/v1/events/{event['id']}"),
    ]:
        response = other.request(method, path, {} if method != "GET" else None)
        assert response.status_code == 404, (method, path, response.json)
    assert other.get("/v1/webhooks").json["data"] == []
    assert other.get("/v1/events").json["data"] == []
    assert len(receiver.hits) == 1


PRIVATE_FORMS = [
    "https://127.0.0.1/hook",
    "https://10.0.0.1/hook",
    "https://172.16.5.4/hook",
    "https://192.168.1.1/hook",
    "https://169.254.10.10/hook",
    "https://[::1]/hook",
    "https://[fd12:3456::1]/hook",
    "https://[fe80::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:8.8.8.8]/hook",
    "https://0.0.0.0/hook",
    "https://2130706433/hook",
    "https://0177.0.0.1/hook",
    "https://0x7f.0.0.1/hook",
    "https://127.1/hook",
    "https://localhost/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[fd00:ec2::254]/hook",
    "http://93.184.215.14/hook",
]


@pytest.mark.parametrize("url", PRIVATE_FORMS)
def test_private_and_metadata_targets_are_refused_when_private_targets_are_off(api, url):
    response = create(api, url=url)
    assert response.status_code == 422, (url, response.json)
    assert "url" in response.json["error"]["details"]["fields"]
    hook = create(api).json["data"]
    patched = api.patch(f"/v1/webhooks/{hook['id']}", {"url": url})
    assert patched.status_code == 422


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/hook",
        "http://[::ffff:169.254.169.254]/hook",
    ],
)
def test_metadata_addresses_are_refused_even_with_private_targets(api, private_allowed, url):
    assert create(api, url=url).status_code == 422


def test_a_name_that_is_not_looked_up_is_accepted_and_checked_where_it_connects(api):
    # Given a name no resolver knows (with outbound confined to loopback, names are not
    # even looked up: no DNS query leaves the machine)
    hook = create(api, url="https://receiver.example.invalid/hook")
    assert hook.status_code == 201, hook.json
    # When it is sent a test event, the attempt fails where it would connect
    result = api.post(f"/v1/webhooks/{hook.json['data']['id']}/test").json["data"]
    assert result["success"] is False and "loopback" in result["error"]


def test_a_public_url_is_accepted_but_the_test_run_only_reaches_loopback(api):
    # Given a public https URL (accepted: the confinement of tests refuses at connect time)
    hook = create(api, url=PUBLIC).json["data"]
    # When it is sent a test event
    result = api.post(f"/v1/webhooks/{hook['id']}/test").json["data"]
    # Then no connection left this machine: the attempt failed where the socket connects
    assert result["success"] is False
    assert "confined to loopback" in result["error"]
    assert result["status_code"] is None


def test_a_test_send_is_signed_as_standard_webhooks_and_recorded(api, private_allowed, receiver):
    # Given an endpoint on a local receiver
    hook = create(api, url=receiver.url).json["data"]
    # When it is sent a test event
    response = api.post(f"/v1/webhooks/{hook['id']}/test")
    # Then the receiver verifies it with the standardwebhooks library
    assert response.status_code == 200, response.json
    result = response.json["data"]
    assert result["success"] is True and result["status_code"] == 200
    assert result["response_body"] == "ok" and result["error"] is None
    hit = receiver.wait_for(1)[0]
    payload = Verifier(hook["secret"]).verify(hit.body, hit.headers)
    assert payload["type"] == "webhook.test"
    assert payload["data"]["webhook_id"] == hook["id"]
    assert set(payload) == {"type", "timestamp", "data"}
    assert hit.headers["webhook-id"].startswith("evt_")
    # And the event is listed, and the delivery recorded with its attempt
    events = api.get("/v1/events?type=webhook.test").json["data"]
    assert [e["id"] for e in events] == [hit.headers["webhook-id"]]
    assert events[0]["data"] == payload["data"]
    delivery = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json["data"][0]
    assert delivery["event_id"] == hit.headers["webhook-id"]
    assert delivery["status"] == "success" and delivery["attempt"] == 1
    attempt = delivery["attempts"][0]
    assert attempt["trigger"] == "test" and attempt["response_code"] == 200
    assert attempt["response_body"] == "ok" and attempt["duration_ms"] >= 0
    # And a wrong secret does not verify
    with pytest.raises(WebhookVerificationError):
        Verifier(base64.b64encode(b"x" * 32).decode()).verify(hit.body, hit.headers)


def test_during_a_rotation_both_signatures_go_out(api, private_allowed, receiver):
    hook = create(api, url=receiver.url).json["data"]
    rotated = api.post(f"/v1/webhooks/{hook['id']}/rotate-secret", {"grace_period_hours": 24})
    assert rotated.status_code == 200, rotated.json
    new_secret = rotated.json["data"]["secret"]
    assert new_secret != hook["secret"] and new_secret.startswith("whsec_")
    api.post(f"/v1/webhooks/{hook['id']}/test")
    hit = receiver.wait_for(1)[0]
    assert len(hit.headers["webhook-signature"].split(" ")) == 2
    Verifier(new_secret).verify(hit.body, hit.headers)
    Verifier(hook["secret"]).verify(hit.body, hit.headers)
    # Without a grace period, the old secret stops at once
    last = api.post(f"/v1/webhooks/{hook['id']}/rotate-secret", {"grace_period_hours": 0})
    api.post(f"/v1/webhooks/{hook['id']}/test")
    hit = receiver.wait_for(2)[1]
    assert len(hit.headers["webhook-signature"].split(" ")) == 1
    Verifier(last.json["data"]["secret"]).verify(hit.body, hit.headers)
    with pytest.raises(WebhookVerificationError):
        Verifier(new_secret).verify(hit.body, hit.headers)


def test_a_redirect_is_not_followed(api, private_allowed):
    target = Receiver()
    redirecting = Receiver(lambda _n: Reply(302, b"moved", {"Location": target.url}))
    try:
        hook = create(api, url=redirecting.url).json["data"]
        result = api.post(f"/v1/webhooks/{hook['id']}/test").json["data"]
        assert result["success"] is False and result["status_code"] == 302
        assert target.hits == []
    finally:
        target.close()
        redirecting.close()


def test_a_huge_answer_is_recorded_up_to_its_cap(api, private_allowed):
    huge = Receiver(lambda _n: Reply(200, b"x" * (10 * 1024 * 1024)))
    try:
        hook = create(api, url=huge.url).json["data"]
        result = api.post(f"/v1/webhooks/{hook['id']}/test").json["data"]
        assert result["success"] is True
        assert len(result["response_body"]) == 20 * 1024
        delivery = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json["data"][0]
        assert len(delivery["attempts"][0]["response_body"]) == 20 * 1024
    finally:
        huge.close()


def test_a_receiver_that_hangs_times_out(api, private_allowed):
    hanging = Receiver(lambda _n: Reply(200, hang_s=3))
    try:
        hook = create(api, url=hanging.url).json["data"]
        result = api.post(f"/v1/webhooks/{hook['id']}/test").json["data"]
        assert result["success"] is False
        assert "timed out after 1 s" in result["error"]
        assert result["response_time_ms"] < 2500
    finally:
        hanging.close()


def test_bad_bodies_get_the_error_envelope(api):
    for body in ('{"url": 5, "events": ["*"]}', "[]", "{", '{"url": "x", "events": ["*"], "a": 1}'):
        response = api.post("/v1/webhooks", body)
        assert response.status_code in (400, 422), body
        assert response.json["error"]["code"] in ("bad_request", "validation_failed")
    assert create(api, url="ftp://93.184.215.14/x").status_code == 422
    assert create(api, url="https:///nohost").status_code == 422
    hook = create(api).json["data"]
    assert (
        api.post(f"/v1/webhooks/{hook['id']}/rotate-secret", {"grace_period_hours": 999})
    ).status_code == 422
    assert api.get(f"/v1/webhooks/{hook['id']}/deliveries?status=odd").status_code == 400
    assert api.get("/v1/events?type=odd").status_code == 400
    assert json.loads(api.get("/v1/webhooks/wh_nope").body)["error"]["code"] == "not_found"
