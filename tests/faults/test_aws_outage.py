"""moto answering 500, or not answering at all, for a while: requests fail with 503
service_unavailable and Retry-After, then succeed again once it recovers, and nothing is
half-written: a project created during the fault exists whole afterwards or not at all, and
the same request sent again with its Idempotency-Key makes exactly one project."""

from __future__ import annotations

import time
import uuid

import pytest

pytestmark = pytest.mark.xdist_group("fault-stack")


def assert_unavailable(status: int, headers, body) -> None:
    assert status == 503, body
    assert body["error"]["code"] == "service_unavailable", body
    assert int(headers["Retry-After"]) >= 1
    assert headers["X-Request-ID"] == body["error"]["request_id"]


def projects_named(stack, name: str) -> list[dict]:
    status, _, body = stack.request("GET", f"/v1/projects?search={name}&limit=100")
    assert status == 200, body
    return [p for p in body["data"] if p["name"] == name]


def create_until_created(stack, name: str, key: str) -> dict:
    """Send the create again with its key until it is answered 201 (a lease the fault left
    behind answers 409 idempotency_key_in_use until it runs out)."""
    deadline = time.monotonic() + 30
    while True:
        status, headers, body = stack.request(
            "POST", "/v1/projects", {"name": name}, headers={"Idempotency-Key": key}
        )
        if status == 201:
            return body["data"]
        assert status in (409, 503), body
        assert int(headers["Retry-After"]) >= 1
        assert time.monotonic() < deadline, body
        time.sleep(float(headers["Retry-After"]))


# fault -> the proxy's rule (action, what it matches: every AWS call when empty)
FAULTS = {
    "moto answers 500 to every call": ("error",),
    "moto answers 500 to the project's write": ("error", "TransactWriteItems", "projects"),
    "moto stops answering": ("stall",),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_requests_fail_with_503_then_recover_and_nothing_is_half_written(
    fault, fault_stack, record
):
    stack = fault_stack.stack
    name = f"outage-{uuid.uuid4().hex[:8]}"
    key = f"outage-{uuid.uuid4().hex}"
    action, *match = FAULTS[fault]
    rule = fault_stack.proxy.add(action, *match)
    try:
        started = time.monotonic()
        answer = stack.request(
            "POST", "/v1/projects", {"name": name}, headers={"Idempotency-Key": key}
        )
        took = time.monotonic() - started
        assert_unavailable(*answer)
        # Bounded timeouts and attempts: an answer, not a hang (API Gateway gives up at 29 s).
        assert took < 20, took
        if not match:
            assert_unavailable(*stack.request("GET", "/v1/projects"))
    finally:
        fault_stack.proxy.remove(rule)

    # Recovered: nothing of the failed create is there, and its retry makes one project.
    assert projects_named(stack, name) == []
    created = create_until_created(stack, name, key)
    status, headers, again = stack.request(
        "POST", "/v1/projects", {"name": name}, headers={"Idempotency-Key": key}
    )
    assert status == 201 and headers["Idempotent-Replayed"] == "true", again
    assert again["data"]["id"] == created["id"]
    assert [p["id"] for p in projects_named(stack, name)] == [created["id"]]
    record(fault, f"503 in {took:.1f} s, then 1 project")
