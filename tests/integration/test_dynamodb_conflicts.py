"""What real DynamoDB does and moto does not: a write that meets a concurrent transaction on
one of its items is refused with a conflict (TransactionCanceledException with a
`TransactionConflict` reason, or TransactionConflictException for a single write). Nothing
was written, so Shipyard sends it again; a conflict is neither a refusal nor a 500.

moto applies one request at a time, so the conflicts are injected, through botocore's own
`before-call` hook, exactly as DynamoDB answers them."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.conftest import Api


def _conflict(operation: str, params: dict) -> tuple:
    if operation == "TransactWriteItems":
        items = json.loads(params["body"])["TransactItems"]
        reasons = [{"Code": "None"}] + [
            {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
            for _ in items[1:]
        ]
        error = {
            "Error": {
                "Code": "TransactionCanceledException",
                "Message": "Transaction cancelled, please refer cancellation reasons",
            },
            "CancellationReasons": reasons,
        }
    else:
        error = {
            "Error": {
                "Code": "TransactionConflictException",
                "Message": "Transaction is ongoing for the item",
            }
        }
    return SimpleNamespace(status_code=400, headers={}), {
        **error,
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }


@pytest.fixture
def conflicts(aws):
    """conflicts(operation, table, times): the next `times` calls of `operation` on the
    table whose logical name is `table` meet a concurrent transaction."""
    from chalicelib.aws.clients import client
    from chalicelib.core.settings import get_settings

    pending: list[list] = []

    def inject(model, params, **kwargs):
        for entry in pending:
            operation, table, left = entry
            if left and model.name == operation and f'"{table}"' in str(params.get("body")):
                entry[2] -= 1
                return _conflict(operation, params)
        return None

    def add(operation: str, table: str, times: int = 1) -> None:
        pending.append([operation, get_settings().table(table), times])

    events = client("dynamodb").meta.events
    events.register("before-call.dynamodb", inject)
    yield add
    events.unregister("before-call.dynamodb", inject)
    assert all(left == 0 for _, _, left in pending), "an injected conflict was never met"


def test_a_project_create_that_meets_a_conflict_is_created_once(api, conflicts):
    conflicts("TransactWriteItems", "projects", times=2)
    response = api.post("/v1/projects", {"name": "Site"})
    assert response.status_code == 201
    assert len(api.get("/v1/projects").json["data"]) == 1
    assert api.get("/v1/usage").json["data"]["metrics"]["projects"]["used"] == 1


def test_a_key_create_that_meets_a_conflict_is_not_a_full_workspace(api, conflicts):
    conflicts("TransactWriteItems", "api_keys", times=2)
    response = api.post("/v1/api-keys", {"name": "ci", "scopes": ["projects:read"]})
    assert response.status_code == 201
    assert len(api.get("/v1/api-keys").json["data"]) == 2


def test_a_workspace_update_that_meets_a_key_transaction_is_applied(api, conflicts):
    own = api.get("/v1/auth/me").json["data"]["workspace"]["id"]
    conflicts("UpdateItem", "workspaces")
    response = api.patch(f"/v1/workspaces/{own}", {"name": "Renamed"})
    assert response.status_code == 200
    assert api.get(f"/v1/workspaces/{own}").json["data"]["name"] == "Renamed"


def test_a_first_use_that_meets_a_revocation_in_progress_still_answers(
    client, make_workspace, conflicts
):
    # The key's once-a-minute last_used_at write lands on the key's item while another
    # request's revocation transaction holds it.
    _, key = make_workspace()
    conflicts("UpdateItem", "api_keys")
    assert Api(client, key).get("/v1/projects").status_code == 200


def test_a_conflict_that_never_clears_is_an_error_not_a_refusal(api, conflicts):
    conflicts("TransactWriteItems", "projects", times=5)
    response = api.post("/v1/projects", {"name": "Site"})
    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal_error"
    assert api.get("/v1/projects").json["data"] == []
