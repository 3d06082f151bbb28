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
