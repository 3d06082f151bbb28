"""The embedded AWS's Query (chalicelib/local/moto_server.py) reads a partition from its
key condition and start key, no further than its Limit: what it answers must be what
DynamoDB answers, page by page, after any change to the table."""

from __future__ import annotations

import random
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.xdist_group("moto-server")


def aws_client(service: str, port: int):
    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def dynamodb(moto_server_port):
    return aws_client("dynamodb", moto_server_port)


def put(table: str, pk: str, sk: str, **condition) -> dict:
    """One Put of a transaction."""
    return {"Put": {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": sk}}, **condition}}


FREE = {"ConditionExpression": "attribute_not_exists(pk)"}


def new_table(dynamodb, range_type: str, keys_only_index_on: str | None = None) -> str:
    """A table keyed (pk, sk); with a KEYS_ONLY index `by_<attribute>` hashed on a string
    attribute if one is named."""
    name = f"query-{uuid.uuid4().hex[:8]}"
    attributes = [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": range_type},
    ]
    indexes = {}
    if keys_only_index_on:
        attributes.append({"AttributeName": keys_only_index_on, "AttributeType": "S"})
        indexes["GlobalSecondaryIndexes"] = [
            {
                "IndexName": f"by_{keys_only_index_on}",
                "KeySchema": [{"AttributeName": keys_only_index_on, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ]
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
        **indexes,
    )
    return name


def every_page(dynamodb, **query) -> tuple[list, int]:
    """The range keys of every page, in order, and how many pages it took."""
    found, pages, start = [], 0, None
    while True:
        answer = dynamodb.query(**query, **({"ExclusiveStartKey": start} if start else {}))
        pages += 1
        found += [item["sk"] for item in answer["Items"]]
        assert answer["Count"] == len(answer["Items"])
        start = answer.get("LastEvaluatedKey")
        if start is None:
            return found, pages


def pages_as_dynamodb_gives_them(partition: list[int], matching: list[int], limit: int) -> int:
    """How many pages a Query takes: one ends at `limit` results when the partition holds
    another item after them in the order read, matching or not (DynamoDB evaluates the
    Limit before the key condition)."""
    pages, results = 1, 0
    for key in partition:
        if results == limit:
            pages, results = pages + 1, 0
        results += key in matching
    return pages


def test_numeric_ranges_page_in_order_whatever_the_insert_order(dynamodb):
    table = new_table(dynamodb, "N")
    numbers = list(range(1, 121))
    random.Random(7).shuffle(numbers)
    for n in numbers:
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"N": str(n)}})
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "b"}, "sk": {"N": str(n * 1000)}})
    values = {":p": {"S": "a"}, ":x": {"N": "10"}, ":y": {"N": "100"}}
    cases = {
        "sk > :x": [n for n in range(11, 121)],
        "sk >= :x": [n for n in range(10, 121)],
        "sk < :x": [n for n in range(1, 10)],
        "sk <= :x": [n for n in range(1, 11)],
        "sk = :x": [10],
        "sk BETWEEN :x AND :y": [n for n in range(10, 101)],
    }
    for condition, expected in cases.items():
        for forward in (True, False):
            used = {k: v for k, v in values.items() if k == ":p" or k in condition}
            found, pages = every_page(
                dynamodb,
                TableName=table,
                KeyConditionExpression=f"pk = :p AND {condition}",
                ExpressionAttributeValues=used,
                Limit=7,
                ScanIndexForward=forward,
            )
            order = list(range(1, 121)) if forward else list(range(120, 0, -1))
            wanted = expected if forward else expected[::-1]
            assert [int(v["N"]) for v in found] == wanted, (condition, forward)
            assert pages == pages_as_dynamodb_gives_them(order, expected, 7), (condition, forward)


def test_a_page_sees_every_change_before_it(dynamodb):
    table = new_table(dynamodb, "S")
    for i in range(10):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": f"k{i:02}"}})

    def keys(**extra):
        answer = dynamodb.query(
            TableName=table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "p"}},
            **extra,
        )
        return [item["sk"]["S"] for item in answer["Items"]]

    assert keys() == [f"k{i:02}" for i in range(10)]
    dynamodb.delete_item(TableName=table, Key={"pk": {"S": "p"}, "sk": {"S": "k03"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": "k035"}})
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": "p"}, "sk": {"S": "k99"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "1"}},
    )
    assert keys(Limit=5) == ["k00", "k01", "k02", "k035", "k04"]
    assert keys(ExclusiveStartKey={"pk": {"S": "p"}, "sk": {"S": "k035"}}, Limit=2) == [
        "k04",
        "k05",
    ]
    assert keys(ScanIndexForward=False, Limit=2) == ["k99", "k09"]
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": "l0"}})
    prefixed = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :k)",
        ExpressionAttributeValues={":p": {"S": "p"}, ":k": {"S": "k0"}},
        ScanIndexForward=False,
        Limit=3,
    )
    assert [item["sk"]["S"] for item in prefixed["Items"]] == ["k09", "k08", "k07"]
    assert prefixed["LastEvaluatedKey"]["sk"] == {"S": "k07"}
    # A transaction that fails leaves nothing behind: what it put, updated or deleted
    # before the write whose condition failed is as it was.
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(
            TransactItems=[
                put(table, "p", "k000"),
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "p"}, "sk": {"S": "k99"}},
                        "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "5"}},
                    }
                },
                {"Delete": {"TableName": table, "Key": {"pk": {"S": "p"}, "sk": {"S": "k00"}}}},
                put(table, "p", "k01", **FREE),
            ]
        )
    assert keys(Limit=2) == ["k00", "k01"]
    kept = dynamodb.get_item(TableName=table, Key={"pk": {"S": "p"}, "sk": {"S": "k99"}})
    assert kept["Item"]["n"] == {"N": "1"}


def test_a_failed_transaction_adds_nothing_to_the_stream(dynamodb, moto_server_port):
    table = new_table(dynamodb, "S")
    described = dynamodb.update_table(
        TableName=table,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    arn = described["TableDescription"]["LatestStreamArn"]
    streams = aws_client("dynamodbstreams", moto_server_port)
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "s"}, "sk": {"S": "taken"}})
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(
            TransactItems=[put(table, "s", "new"), put(table, "s", "taken", **FREE)]
        )
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "s"}, "sk": {"S": "after"}})
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    keys = [r["dynamodb"]["Keys"]["sk"]["S"] for r in records]
    assert keys == ["taken", "after"]


def test_limit_counts_what_is_read_before_the_filter(dynamodb):
    table = new_table(dynamodb, "N")
    for n in range(1, 21):
        item = {"pk": {"S": "f"}, "sk": {"N": str(n)}, "even": {"BOOL": n % 2 == 0}}
        dynamodb.put_item(TableName=table, Item=item)
    answer = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        FilterExpression="even = :t",
        ExpressionAttributeValues={":p": {"S": "f"}, ":t": {"BOOL": True}},
        Limit=5,
    )
    assert [item["sk"]["N"] for item in answer["Items"]] == ["2", "4"]
    assert answer["ScannedCount"] == 5
    assert answer["LastEvaluatedKey"]["sk"] == {"N": "5"}


def test_a_key_of_the_wrong_type_is_refused_as_dynamodb_refuses_it(dynamodb):
    table = new_table(dynamodb, "N")
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "w"}, "sk": {"N": "1"}})
    with pytest.raises(ClientError) as refused:
        dynamodb.query(
            TableName=table,
            KeyConditionExpression="pk = :p AND sk > :x",
            ExpressionAttributeValues={":p": {"S": "w"}, ":x": {"S": "text"}},
        )
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_one_update_expression_on_many_items_updates_each_by_its_own_values(dynamodb):
    # The parsed expression is kept; each request must still get a tree of its own.
    table = new_table(dynamodb, "S")
    update = {
        "UpdateExpression": "SET n = if_not_exists(n, :zero) + :step ADD tags :tag",
        "ReturnValues": "ALL_NEW",
    }
    for step, key in ((1, "a"), (5, "b"), (2, "a")):
        dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": "u"}, "sk": {"S": key}},
            ExpressionAttributeValues={
                ":zero": {"N": "0"},
                ":step": {"N": str(step)},
                ":tag": {"SS": [f"t{step}"]},
            },
            **update,
        )
    items = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "u"}},
    )["Items"]
    assert [(i["sk"]["S"], i["n"]["N"], sorted(i["tags"]["SS"])) for i in items] == [
        ("a", "3", ["t1", "t2"]),
        ("b", "5", ["t5"]),
    ]
    for _ in range(2):  # a malformed expression is refused every time, never kept
        with pytest.raises(ClientError) as refused:
            dynamodb.update_item(
                TableName=table,
                Key={"pk": {"S": "u"}, "sk": {"S": "a"}},
                UpdateExpression="SET n = = :step",
                ExpressionAttributeValues={":step": {"N": "1"}},
            )
        assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_items_that_are_not_plain_json_come_back_as_they_were_put(dynamodb):
    # Binary, null and set values take moto's serializer; the rest is sent as it is.
    table = new_table(dynamodb, "S")
    item = {
        "pk": {"S": "j"},
        "sk": {"S": "1"},
        "blob": {"B": b"\x00\xffbytes"},
        "nothing": {"NULL": True},
        "text": {"S": "null and void"},
        "numbers": {"NS": ["1", "2.5"]},
        "nested": {"M": {"list": {"L": [{"BOOL": False}, {"S": "x"}]}}},
    }
    dynamodb.put_item(TableName=table, Item=item)
    got = dynamodb.get_item(TableName=table, Key={"pk": {"S": "j"}, "sk": {"S": "1"}})["Item"]
    assert got["blob"] == {"B": b"\x00\xffbytes"}
    assert got["nothing"] == {"NULL": True}
    assert got["text"] == {"S": "null and void"}
    assert sorted(got["numbers"]["NS"]) == ["1", "2.5"]
    assert got["nested"] == item["nested"]


def test_a_refused_condition_answers_dynamodbs_error_with_the_item(dynamodb):
    table = new_table(dynamodb, "S")
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "c"}, "sk": {"S": "1"}})
    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(
            TableName=table,
            Item={"pk": {"S": "c"}, "sk": {"S": "1"}},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    error = refused.value.response
    assert error["Error"]["Code"] == "ConditionalCheckFailedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Item"] == {"pk": {"S": "c"}, "sk": {"S": "1"}}
    assert len(error["ResponseMetadata"]["RequestId"]) == 52


def test_answers_share_items_but_projections_leave_the_table_as_it_was(dynamodb):
    """A Query's or Scan's items are answered uncopied; a projection, of the request or of
    a KEYS_ONLY index, makes new items, and the stored ones keep every attribute."""
    name = new_table(dynamodb, "S", keys_only_index_on="g")
    whole = {
        "pk": {"S": "p"},
        "sk": {"S": "1"},
        "g": {"S": "x"},
        "nested": {"M": {"a": {"L": [{"N": "1"}]}}},
    }
    dynamodb.put_item(TableName=name, Item=whole)
    key = {":p": {"S": "p"}}
    projected = dynamodb.query(
        TableName=name,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues=key,
        ProjectionExpression="nested.a[0]",
    )["Items"]
    assert projected == [{"nested": {"M": {"a": {"L": [{"N": "1"}]}}}}]
    by_index = dynamodb.query(
        TableName=name,
        IndexName="by_g",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "x"}},
    )["Items"]
    assert by_index == [{"pk": {"S": "p"}, "sk": {"S": "1"}, "g": {"S": "x"}}]
    assert dynamodb.scan(TableName=name, ProjectionExpression="g")["Items"] == [{"g": {"S": "x"}}]
    dynamodb.update_item(
        TableName=name,
        Key={"pk": {"S": "p"}, "sk": {"S": "1"}},
        UpdateExpression="SET nested.a[0] = :two",
        ExpressionAttributeValues={":two": {"N": "2"}},
    )
    assert whole["nested"]["M"]["a"]["L"][0] == {"N": "1"}  # what was sent is untouched
    after = dynamodb.query(
        TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues=key
    )
    assert after["Items"] == [{**whole, "nested": {"M": {"a": {"L": [{"N": "2"}]}}}}]


def test_stream_records_carry_each_image_as_it_was_written(dynamodb, moto_server_port):
    """GetRecords, answered as JSON text: every attribute type, old and new images, the
    record's time, the limit and the next iterator, as botocore reads them."""
    import datetime

    table = new_table(dynamodb, "S")
    arn = dynamodb.update_table(
        TableName=table,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"]
    streams = aws_client("dynamodbstreams", moto_server_port)
    every_type = {
        "pk": {"S": "p"},
        "sk": {"S": "1"},
        "n": {"N": "12.5"},
        "b": {"B": b"\x00\xffbytes"},
        "flag": {"BOOL": False},
        "nothing": {"NULL": True},
        "tags": {"SS": ["a", "b"]},
        "nested": {"M": {"list": {"L": [{"N": "1"}, {"S": "null"}]}}},
    }
    before = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)
    dynamodb.put_item(TableName=table, Item=every_type)
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": "1"}, "n": {"N": "2"}})
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    first = streams.get_records(ShardIterator=iterator, Limit=1)
    inserted = first["Records"][0]
    assert inserted["eventName"] == "INSERT"
    assert inserted["dynamodb"]["NewImage"] == every_type
    assert inserted["dynamodb"]["Keys"] == {"pk": {"S": "p"}, "sk": {"S": "1"}}
    assert inserted["dynamodb"]["ApproximateCreationDateTime"] > before
    rest = streams.get_records(ShardIterator=first["NextShardIterator"])["Records"]
    assert [r["eventName"] for r in rest] == ["MODIFY"]
    assert rest[0]["dynamodb"]["OldImage"] == every_type
    assert rest[0]["dynamodb"]["NewImage"] == {"pk": {"S": "p"}, "sk": {"S": "1"}, "n": {"N": "2"}}


def test_items_holding_json_text_come_back_whole(dynamodb):
    """A stored JSON document (an idempotent request's answer, an event) holds "null" in
    its text: it is answered like any string, by every item operation."""
    table = new_table(dynamodb, "S")
    document = {"S": '{"description": null, "items": [null]}'}
    key = {"pk": {"S": "p"}, "sk": {"S": "1"}}
    dynamodb.put_item(TableName=table, Item={**key, "doc": document})
    assert dynamodb.get_item(TableName=table, Key=key)["Item"]["doc"] == document
    updated = dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET copied = :d",
        ExpressionAttributeValues={":d": document},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert updated == {**key, "doc": document, "copied": document}
    found = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
    )["Items"]
    assert found == [updated]


def test_each_workflow_execution_runs_its_own_definition_on_its_own_input():
    """moto's parse of a state machine is kept between executions (patch above): each
    execution still sees its own input, and an updated definition is the one that runs."""
    import json
    import time

    from moto import mock_aws

    from chalicelib.local import moto_server

    moto_server.patch()

    def machine(suffix: str) -> str:
        return json.dumps(
            {
                "StartAt": "Pick",
                "States": {
                    "Pick": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}],
                        "Default": "Small",
                    },
                    "Big": {
                        "Type": "Pass",
                        "Parameters": {"said.$": "$.n", "was": f"big{suffix}"},
                        "End": True,
                    },
                    "Small": {
                        "Type": "Pass",
                        "Parameters": {"said.$": "$.n", "was": f"small{suffix}"},
                        "End": True,
                    },
                },
            }
        )

    def outputs(sfn, arn: str, inputs: list[int]) -> list[dict]:
        started = [
            sfn.start_execution(
                stateMachineArn=arn, name=uuid.uuid4().hex, input=json.dumps({"n": n})
            )
            for n in inputs
        ]
        found = []
        for execution in started:
            deadline = time.monotonic() + 30
            while (answer := sfn.describe_execution(executionArn=execution["executionArn"]))[
                "status"
            ] == "RUNNING":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert answer["status"] == "SUCCEEDED", answer
            found.append(json.loads(answer["output"]))
        return found

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="choose", definition=machine(""), roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        assert outputs(sfn, arn, [1, 2, 3, 0]) == [
            {"said": 1, "was": "small"},
            {"said": 2, "was": "big"},
            {"said": 3, "was": "big"},
            {"said": 0, "was": "small"},
        ]
        sfn.update_state_machine(stateMachineArn=arn, definition=machine("!"))
        assert outputs(sfn, arn, [5]) == [{"said": 5, "was": "big!"}]
