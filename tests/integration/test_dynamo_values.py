"""Every DynamoDB attribute type reads back as the store's plain Python, whichever way the
item comes: a GetItem, a Query, an UpdateItem's new image or a refused condition's item
(chalicelib/store/dynamo.py reads the values as DynamoDB sends them), from moto in this
process and from the moto server the local stack runs."""

from __future__ import annotations

import base64

import pytest
from boto3.dynamodb.types import Binary
from botocore.exceptions import ClientError

from chalicelib.aws.clients import client
from chalicelib.aws.errors import refused_item

SENT = {
    "workspace_id": {"S": "ws_values"},
    "id": {"S": "evt_values"},
    "text": {"S": "héllo"},
    "whole": {"N": "42"},
    "negative": {"N": "-7"},
    "fraction": {"N": "1.5"},
    "exponent": {"N": "1E+3"},
    "flag": {"BOOL": False},
    "nothing": {"NULL": True},
    "words": {"SS": ["b", "a"]},
    "numbers": {"NS": ["10", "2.5"]},
    "blob": {"B": b"\x00\xffdata"},
    "blobs": {"BS": [b"z", b"a"]},
    "nested": {
        "M": {
            "list": {
                "L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"BOOL": True}, "b": {"B": b"\x01"}}}]
            }
        }
    },
}
READ = {
    "workspace_id": "ws_values",
    "id": "evt_values",
    "text": "héllo",
    "whole": 42,
    "negative": -7,
    "fraction": 1.5,
    "exponent": 1000,
    "flag": False,
    "nothing": None,
    "words": ["a", "b"],
    "numbers": [2.5, 10],
    "blob": Binary(b"\x00\xffdata"),
    "blobs": [Binary(b"a"), Binary(b"z")],
    "nested": {"list": ["x", 1, {"deep": True, "b": Binary(b"\x01")}]},
}
KEY = {"workspace_id": "ws_values", "id": "evt_values"}


@pytest.fixture(params=["in-process", "server"])
def events(request):
    request.getfixturevalue("aws" if request.param == "in-process" else "server_aws")
    from chalicelib.store.dynamo import Table

    table = Table("events")
    client("dynamodb").put_item(TableName=table.name, Item=SENT)
    return table


def test_the_client_answers_what_it_was_sent_binary_included(events):
    """What a read answers can be sent back as it is (a LastEvaluatedKey, UnprocessedKeys):
    binary values come back as bytes at any depth, as botocore's own parse gives them."""
    answer = client("dynamodb").get_item(TableName=events.name, Key={k: SENT[k] for k in KEY})
    assert answer["Item"] == SENT


def test_each_type_reads_back_from_get_query_and_update(events):
    assert events.get(KEY) == READ
    page, _ = events.query_page("workspace_id = :ws", {":ws": "ws_values"}, 10)
    assert page == [READ]
    assert events.update(KEY, "SET flag = :t", values={":t": True}) == {**READ, "flag": True}


def test_each_type_reads_back_from_a_refused_condition(events):
    from chalicelib.store.dynamo import deserialize

    with pytest.raises(ClientError) as refused:
        client("dynamodb").put_item(
            TableName=events.name,
            Item=SENT,
            ConditionExpression="attribute_not_exists(id)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert deserialize(refused_item(refused.value)) == READ


def test_binary_as_sent_is_decoded():
    from chalicelib.store.dynamo import deserialize

    text = base64.b64encode(b"\x01\x02").decode()
    assert deserialize({"b": {"B": text}, "bs": {"BS": [text]}}) == {
        "b": Binary(b"\x01\x02"),
        "bs": [Binary(b"\x01\x02")],
    }


class Throttling:
    """DynamoDB leaving part of each batch request unprocessed for `times` requests (what
    it does when it throttles), then answering as moto does; `times=None`: always."""

    def __init__(self, monkeypatch, operation: str, times: int | None) -> None:
        ddb = client("dynamodb")
        self.calls, real = 0, getattr(ddb, operation)
        unprocessed = "UnprocessedItems" if operation == "batch_write_item" else "UnprocessedKeys"

        def throttled(RequestItems):  # botocore's parameter name
            self.calls += 1
            if times is not None and self.calls > times:
                return real(RequestItems=RequestItems)
            # The first request of each table's is done; the rest is handed back.
            done, back = {}, {}
            for table, asked in RequestItems.items():
                requests = asked if isinstance(asked, list) else asked["Keys"]
                first, rest = requests[:1], requests[1:]
                done[table] = first if isinstance(asked, list) else {**asked, "Keys": first}
                if rest:
                    back[table] = rest if isinstance(asked, list) else {**asked, "Keys": rest}
            answer = real(RequestItems=done)
            answer[unprocessed] = back
            return answer

        monkeypatch.setattr(ddb, operation, throttled)
        monkeypatch.setattr("chalicelib.store.dynamo.time.sleep", lambda seconds: None)


def test_batch_writes_and_reads_left_unprocessed_are_sent_again_until_done(aws, monkeypatch):
    from chalicelib.store.dynamo import Table, get_together

    events = Table("events")
    items = [{"workspace_id": "ws_a", "id": f"evt_{n}", "type": "t"} for n in range(4)]
    throttling = Throttling(monkeypatch, "batch_write_item", times=3)
    events.batch_write(puts=items)
    assert throttling.calls == 4  # one item done by each throttled request, then the rest
    throttling = Throttling(monkeypatch, "batch_get_item", times=2)
    keys = [(events, {"workspace_id": "ws_a", "id": item["id"]}) for item in items]
    assert get_together(keys) == items
    assert throttling.calls == 3


def test_a_batch_write_dynamodb_keeps_throttling_fails_instead_of_spinning(aws, monkeypatch):
    from chalicelib.store.dynamo import UNPROCESSED_TRIES, Table

    items = [{"workspace_id": "ws_a", "id": f"evt_{n}", "type": "t"} for n in range(30)]
    throttling = Throttling(monkeypatch, "batch_write_item", times=None)
    with pytest.raises(RuntimeError, match="still unprocessed"):
        Table("events").batch_write(puts=items)
    assert throttling.calls == UNPROCESSED_TRIES
