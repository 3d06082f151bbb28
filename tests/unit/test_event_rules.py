"""The pure rules of events and webhooks: which events a change record makes (and that the
same record makes the same ids), filters, the retry schedule, and which addresses an
outbound connection may reach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from chalicelib.events.derive import from_record
from chalicelib.events.types import FILTERS, matches
from chalicelib.outbound.addresses import refusal
from chalicelib.webhooks.deliveries import next_delay


def image(**values) -> dict:
    out = {}
    for name, value in values.items():
        if isinstance(value, dict):
            out[name] = value  # already an attribute value
        else:
            out[name] = {"N": str(value)} if isinstance(value, int) else {"S": value}
    return out


def record(old: dict | None, new: dict | None, sequence: str = "100") -> dict:
    change = {
        "ApproximateCreationDateTime": 1767225600.123,
        "Keys": {"project_id": {"S": "prj_1"}, "id": {"S": "dep_1"}},
        "SequenceNumber": sequence,
    }
    if old:
        change["OldImage"] = old
    if new:
        change["NewImage"] = new
    return {"eventID": "e1", "eventName": "MODIFY", "dynamodb": change}


def deployment(status: str, **extra) -> dict:
    return image(
        id="dep_1", project_id="prj_1", workspace_id="ws_1", number=3, status=status, **extra
    )


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        (None, "pending", "deployment.created"),
        ("pending", "building", "build.started"),
        ("building", "built", "build.completed"),
        ("building", "failed", "build.failed"),
        ("pending", "failed", "build.failed"),
        ("deploying", "running", "deploy.completed"),
        ("built", "running", "deploy.completed"),
        ("deploying", "failed", "deploy.failed"),
        ("building", "canceled", "deployment.canceled"),
        ("running", "stopped", None),
        ("running", "running", None),
    ],
)
def test_a_deployments_transition_makes_its_event(before, after, kind):
    old = deployment(before) if before else None
    found = from_record("deployments", record(old, deployment(after, error_code="timed_out")))
    assert [e["type"] for e in found] == ([kind] if kind else [])
    for event in found:
        assert event["workspace_id"] == "ws_1"
        assert event["data"]["deployment_id"] == "dep_1" and event["data"]["number"] == 3
        assert event["data"]["error_code"] == "timed_out"
        assert event["timestamp"] == "2026-01-01T00:00:00Z"


def test_the_same_record_makes_the_same_id_and_another_record_another():
    change = record(deployment("pending"), deployment("building"))
    first, again = from_record("deployments", change), from_record("deployments", change)
    assert first[0]["id"] == again[0]["id"] and first[0]["id"].startswith("evt_")
    later = from_record("deployments", record(deployment("pending"), deployment("building"), "101"))
    assert later[0]["id"] != first[0]["id"]


def test_a_restart_is_a_crash_event():
    old = deployment("running", runtime={"M": {"restarts": {"N": "1"}}})
    new = deployment("running", runtime={"M": {"restarts": {"N": "2"}}})
    found = from_record("deployments", record(old, new))
    assert [e["type"] for e in found] == ["deployment.crashed"]
    assert found[0]["data"]["restarts"] == 2


def test_slug_claims_and_partner_keys_make_no_events():
    slug = image(workspace_id="ws_1", sk="slug#shop", project_id="prj_1")
    assert from_record("projects", record(None, slug)) == []
    partner_key = image(key_hash="h", id="key_1", owner_id="ptn_1", name="p")
    assert from_record("api_keys", record(None, partner_key)) == []
    revoked = image(key_hash="h", id="key_1", workspace_id="ws_1", name="k", revoked_at="t")
    kept = image(key_hash="h", id="key_1", workspace_id="ws_1", name="k")
    assert [e["type"] for e in from_record("api_keys", record(kept, revoked))] == [
        "api_key.revoked"
    ]


def test_filters():
    assert {"*", "deploy.*", "api_key.created"} <= set(FILTERS)
    assert not {"deploy", "nope.*", ""} & set(FILTERS)
    assert matches(["deploy.*"], "deploy.completed")
    assert not matches(["deploy.*"], "deployment.created")
    assert matches(["*"], "webhook.test") and matches(["build.failed"], "build.failed")


def test_the_retry_schedule_jitters_and_respects_retry_after():
    steps = [5, 300, 1800, 7200, 18000, 36000, 36000]
    for made, step in enumerate(steps, start=1):
        delays = [next_delay(made, None) for _ in range(200)]
        assert all(step * 0.8 <= d <= step * 1.2 for d in delays)
        assert len(set(delays)) > 1
    assert next_delay(8, None) is None
    assert next_delay(1, "120") == 120
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=600), usegmt=True)
    assert 590 <= next_delay(1, later) <= 601
    assert 4 <= next_delay(1, "soon") <= 6


@pytest.mark.parametrize(
    ("address", "private_ok", "public_only"),
    [
        ("93.184.215.14", None, None),
        ("2606:2800:220:1::", None, None),
        ("127.0.0.1", None, "a loopback address"),
        ("::1", None, "a loopback address"),
        ("10.1.2.3", None, "a private address"),
        ("169.254.1.1", None, "a link-local address"),
        ("fd12::1", None, "a unique-local address"),
        ("::ffff:127.0.0.1", None, "an IPv4-mapped IPv6 address"),
        ("0.0.0.0", None, "the unspecified address"),
        ("100.64.0.1", None, "not a public address"),
        ("169.254.169.254", "a cloud metadata address", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address", "a cloud metadata address"),
        ("::ffff:169.254.169.254", "a cloud metadata address", "a cloud metadata address"),
    ],
)
def test_which_addresses_may_be_reached(address, private_ok, public_only):
    assert refusal(address, allow_private=True) == private_ok
    assert refusal(address, allow_private=False) == public_only
