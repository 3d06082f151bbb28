"""Create the resources declared in infra/resources.json, idempotently.

Used by the local stack (against moto in server mode) and by the tests (inside moto's
`mock_aws`). On AWS the same declaration is rendered by infra/cloudformation.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parent
# moto checks the form of a state machine's role, not that it exists.
LOCAL_WORKFLOW_ROLE = "arn:aws:iam::123456789012:role/shipyard-deploy-workflow"


def declaration() -> dict[str, Any]:
    return json.loads((INFRA / "resources.json").read_text())


def table_definitions(prefix: str) -> list[dict[str, Any]]:
    """CreateTable arguments for every declared table."""
    spec = declaration()
    numbers = set(spec["number_attributes"])
    definitions = []

    def key_schema(attributes: dict, hash_key: str, range_key: str | None) -> list[dict]:
        schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        if range_key:
            schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        for name in filter(None, (hash_key, range_key)):
            attributes[name] = "N" if name in numbers else "S"
        return schema

    for logical, table in spec["tables"].items():
        attributes: dict[str, str] = {}
        definition: dict[str, Any] = {
            "TableName": f"{prefix}-{logical}",
            "KeySchema": key_schema(attributes, table["hash"], table.get("range")),
            "BillingMode": "PAY_PER_REQUEST",
        }
        indexes = [
            {
                "IndexName": name,
                "KeySchema": key_schema(attributes, index["hash"], index.get("range")),
                "Projection": {"ProjectionType": "ALL"},
            }
            for name, index in table.get("indexes", {}).items()
        ]
        if indexes:
            definition["GlobalSecondaryIndexes"] = indexes
        if "stream" in table:
            definition["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": table["stream"],
            }
        definition["AttributeDefinitions"] = [
            {"AttributeName": name, "AttributeType": kind} for name, kind in attributes.items()
        ]
        definitions.append(definition)
    return definitions


def ttl_attributes() -> dict[str, str]:
    """Tables whose items expire, and the attribute holding when (epoch seconds). TTL only
    keeps them from piling up: DynamoDB deletes late, so the code compares expiry itself."""
    return {name: table["ttl"] for name, table in declaration()["tables"].items() if "ttl" in table}


def provision(prefix: str = "shipyard", region: str = "us-east-1") -> dict[str, str]:
    """Create what is missing; return the environment the app needs to find it."""
    import boto3

    spec = declaration()
    ddb = boto3.client("dynamodb", region_name=region)
    existing = set(ddb.list_tables()["TableNames"])
    expiring = {f"{prefix}-{name}": attribute for name, attribute in ttl_attributes().items()}
    for definition in table_definitions(prefix):
        name = definition["TableName"]
        if name not in existing:
            ddb.create_table(**definition)
            if name in expiring:
                ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"AttributeName": expiring[name], "Enabled": True},
                )
        elif "StreamSpecification" in definition:
            # A moto server reused across restarts may hold the table as an older
            # declaration made it, without its stream.
            current = ddb.describe_table(TableName=name)["Table"]
            if not current.get("StreamSpecification", {}).get("StreamEnabled"):
                ddb.update_table(
                    TableName=name, StreamSpecification=definition["StreamSpecification"]
                )

    s3 = boto3.client("s3", region_name=region)
    for bucket in spec["buckets"]:
        name = f"{prefix}-{bucket}"
        if name not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            s3.create_bucket(Bucket=name)

    sqs = boto3.client("sqs", region_name=region)
    for queue, attributes in spec["queues"].items():
        # As on AWS: a message that fails max_receives deliveries moves to the queue's DLQ.
        dead_url = sqs.create_queue(QueueName=f"{prefix}-{queue}-dead")["QueueUrl"]
        dead_arn = sqs.get_queue_attributes(QueueUrl=dead_url, AttributeNames=["QueueArn"])
        redrive = {
            "deadLetterTargetArn": dead_arn["Attributes"]["QueueArn"],
            "maxReceiveCount": attributes["max_receives"],
        }
        settings = {k: str(v) for k, v in attributes.items() if k != "max_receives"}
        settings["RedrivePolicy"] = json.dumps(redrive)
        try:
            sqs.create_queue(QueueName=f"{prefix}-{queue}", Attributes=settings)
        except sqs.exceptions.QueueNameExists:
            # A moto server reused across restarts keeps the queue as an older declaration
            # made it: bring it up to this one.
            url = sqs.get_queue_url(QueueName=f"{prefix}-{queue}")["QueueUrl"]
            sqs.set_queue_attributes(QueueUrl=url, Attributes=settings)

    sfn = boto3.client("stepfunctions", region_name=region)
    machines = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    for machine, definition_file in spec.get("state_machines", {}).items():
        name = f"{prefix}-{machine}"
        definition = (INFRA / definition_file).read_text()
        if name in machines:
            # A moto server reused across restarts keeps the old definition: refresh it.
            sfn.update_state_machine(stateMachineArn=machines[name], definition=definition)
        else:
            sfn.create_state_machine(
                name=name, definition=definition, roleArn=LOCAL_WORKFLOW_ROLE, type="STANDARD"
            )

    kms = boto3.client("kms", region_name=region)
    aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    for key in spec["kms_keys"]:
        alias = f"alias/{prefix}" if key == "shipyard" else f"alias/{prefix}-{key}"
        if alias not in aliases:
            key_id = kms.create_key(Description=f"Shipyard {key}")["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName=alias, TargetKeyId=key_id)

    provision_codebuild(spec, prefix, region)

    return {"SHIPYARD_RESOURCE_PREFIX": prefix, "SHIPYARD_KMS_KEY_ALIAS": f"alias/{prefix}"}


def provision_codebuild(spec: dict[str, Any], prefix: str, region: str) -> None:
    """The build projects. Every build overrides the source, buildspec, env and artifacts,
    so a project holds only the machine, the timeout and the service role."""
    import boto3

    projects = spec.get("codebuild_projects", {})
    if not projects:
        return
    # provision() only ever runs against moto, where the role is just a name in moto's
    # account; on AWS the rendered template creates it (permissions: docs/builds.md).
    account = os.environ.get("MOTO_ACCOUNT_ID", "123456789012")
    role_arn = f"arn:aws:iam::{account}:role/{prefix}-codebuild"
    codebuild = boto3.client("codebuild", region_name=region)
    names = [f"{prefix}-{name}" for name in projects]
    existing = {p["name"] for p in codebuild.batch_get_projects(names=names)["projects"]}
    for name, project in projects.items():
        if f"{prefix}-{name}" in existing:
            continue
        codebuild.create_project(
            name=f"{prefix}-{name}",
            source={"type": "S3", "location": f"{prefix}-artifacts/uploads/"},
            artifacts={"type": "NO_ARTIFACTS"},
            environment={
                "type": "LINUX_CONTAINER",
                "image": project["image"],
                "computeType": project["compute_type"],
            },
            serviceRole=role_arn,
            timeoutInMinutes=project["timeout_minutes"],
        )
