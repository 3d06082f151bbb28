"""Pure pieces of the pipeline, with the network off: schedules, multipart parsing, the
SQS events the pump hands to handlers, and the SSE framing."""

from __future__ import annotations

import pytest

from chalicelib.core.errors import BadRequest
from chalicelib.local.pump import rate_seconds, sqs_event
from chalicelib.pipeline.actions import parse_multipart
from tests.pipeline_support import multipart


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
    ],
)
def test_rate_expressions(expression, seconds):
    assert rate_seconds(expression) == seconds


def test_cron_schedules_are_refused_locally():
    with pytest.raises(ValueError, match="rate"):
        rate_seconds("cron(0 12 * * ? *)")


def test_multipart_fields_by_name_binary_safe():
    archive = bytes(range(256)) * 10 + b"\r\n--not-a-boundary\r\n"
    content_type, body = multipart({"archive": ("a.tar.gz", archive), "note": "hello"})
    fields = parse_multipart(content_type, body)
    assert fields["archive"] == archive
    assert fields["note"] == b"hello"


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data"])
def test_multipart_needs_its_content_type_and_boundary(content_type):
    with pytest.raises(BadRequest):
        parse_multipart(content_type, b"{}")


def test_the_pump_delivers_what_lambda_would():
    message = {"MessageId": "m1", "ReceiptHandle": "r1", "Body": '{"kind": "build"}'}
    event = sqs_event(message, "arn:aws:sqs:us-east-1:123456789012:shipyard-builds")
    [record] = event["Records"]
    assert record["body"] == '{"kind": "build"}'
    assert record["eventSource"] == "aws:sqs"
    assert record["awsRegion"] == "us-east-1"
    assert record["receiptHandle"] == "r1"


def test_the_chalice_sqs_handler_reads_the_pumps_events():
    from chalice.app import SQSEvent

    event = sqs_event(
        {"MessageId": "m1", "ReceiptHandle": "r1", "Body": "x"},
        "arn:aws:sqs:us-east-1:123456789012:q",
    )
    assert [record.body for record in SQSEvent(event, None)] == ["x"]
