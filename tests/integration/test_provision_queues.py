"""The local stack's queues behave as the template's: each has its dead-letter queue, and a
message that fails max_receives deliveries moves there instead of coming back forever."""

import json

import boto3

from infra.provision import declaration, provision


def attributes(sqs, name: str) -> dict:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_every_declared_queue_redrives_to_its_dead_letter_queue(aws):
    sqs = boto3.client("sqs", region_name="us-east-1")
    for queue, declared in declaration()["queues"].items():
        redrive = json.loads(attributes(sqs, f"shipyard-{queue}")["RedrivePolicy"])
        assert redrive["maxReceiveCount"] == declared["max_receives"]
        dead = attributes(sqs, f"shipyard-{queue}-dead")
        assert redrive["deadLetterTargetArn"] == dead["QueueArn"]


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue(aws):
    # Given a builds message whose consumer never deletes it
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="shipyard-builds")["QueueUrl"]
    dead_url = sqs.get_queue_url(QueueName="shipyard-builds-dead")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='{"kind": "build"}')
    # When it is received max_receives times, each time made visible again at once
    for _ in range(declaration()["queues"]["builds"]["max_receives"]):
        received = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
        assert len(received) == 1
    # Then the next receive finds it in the dead-letter queue, not in the queue
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=0).get("Messages", []) == []
    moved = sqs.receive_message(QueueUrl=dead_url)["Messages"]
    assert [m["Body"] for m in moved] == ['{"kind": "build"}']


def test_provisioning_again_brings_an_older_queue_up_to_the_declaration(aws):
    # Given a queue as an older declaration made it (a moto server kept across an upgrade)
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="shipyard-deploy-tasks")["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    sqs.create_queue(QueueName="shipyard-deploy-tasks", Attributes={"VisibilityTimeout": "60"})
    assert "RedrivePolicy" not in attributes(sqs, "shipyard-deploy-tasks")
    # When the stack provisions again
    provision("shipyard")
    # Then it has the declared visibility timeout and its redrive policy
    now = attributes(sqs, "shipyard-deploy-tasks")
    assert now["VisibilityTimeout"] == str(
        declaration()["queues"]["deploy-tasks"]["VisibilityTimeout"]
    )
    assert "shipyard-deploy-tasks-dead" in now["RedrivePolicy"]
