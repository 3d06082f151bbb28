"""Render infra/resources.json as a CloudFormation template to merge into chalice's own:

    python -m infra.cloudformation > infra/build/resources.json
    chalice package --stage prod --merge-template infra/build/resources.json infra/build/out

The same declaration that provision.py creates locally, so AWS and the local stack agree.
API Gateway's own answers (no route, bad method) are mapped to the contract's envelope.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from infra.provision import declaration, table_definitions, ttl_attributes

PREFIX = "shipyard"


def _logical(kind: str, name: str) -> str:
    return kind + "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]", name))


def _envelope(code: str, message: str) -> str:
    return json.dumps(
        {"error": {"code": code, "message": message, "request_id": "$context.requestId"}}
    )


def template() -> dict[str, Any]:
    spec = declaration()
    resources: dict[str, Any] = {}
    expiring = {f"{PREFIX}-{name}": attribute for name, attribute in ttl_attributes().items()}
    for definition in table_definitions(PREFIX):
        properties = dict(definition)
        if definition["TableName"] in expiring:
            properties["TimeToLiveSpecification"] = {
                "AttributeName": expiring[definition["TableName"]],
                "Enabled": True,
            }
        resources[_logical("Table", definition["TableName"])] = {
            "Type": "AWS::DynamoDB::Table",
            "Properties": properties,
        }
    for queue, attributes in spec["queues"].items():
        resources[_logical("Queue", queue)] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": f"{PREFIX}-{queue}", **attributes},
        }
    for bucket in spec["buckets"]:
        resources[_logical("Bucket", bucket)] = {
            "Type": "AWS::S3::Bucket",
            "Properties": {
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "uploads",
                            "Prefix": "uploads/",
                            "Status": "Enabled",
                            "ExpirationInDays": 7,
                        }
                    ]
                },
            },
        }
    for key in spec["kms_keys"]:
        logical = _logical("Key", key)
        resources[logical] = {
            "Type": "AWS::KMS::Key",
            "Properties": {"Description": f"Shipyard {key}", "EnableKeyRotation": True},
        }
        resources[logical + "Alias"] = {
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": f"alias/{PREFIX}", "TargetKeyId": {"Ref": logical}},
        }
    gateway = {
        "MISSING_AUTHENTICATION_TOKEN": ("404", "not_found", "No route matches this path"),
        "DEFAULT_4XX": (None, "bad_request", "Malformed request"),
        "DEFAULT_5XX": (None, "internal_error", "An internal error occurred"),
    }
    for response_type, (status, code, message) in gateway.items():
        properties: dict[str, Any] = {
            "RestApiId": {"Ref": "RestAPI"},
            "ResponseType": response_type,
            "ResponseTemplates": {"application/json": _envelope(code, message)},
            "ResponseParameters": {
                "gatewayresponse.header.X-Request-ID": "context.requestId",
                "gatewayresponse.header.Content-Type": "'application/json'",
            },
        }
        if status:
            properties["StatusCode"] = status
        resources[_logical("GatewayResponse", response_type.lower())] = {
            "Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": properties,
        }
    first_bucket = _logical("Bucket", spec["buckets"][0])
    return {
        "Parameters": {
            "CursorSecret": {
                "Type": "String",
                "NoEcho": True,
                "MinLength": 32,
                "Description": "HMAC secret of pagination cursors (e.g. openssl rand -hex 32)",
            }
        },
        "Globals": {
            "Function": {
                "Environment": {
                    "Variables": {
                        "SHIPYARD_CURSOR_SECRET": {"Ref": "CursorSecret"},
                        "SHIPYARD_BUCKET": {"Ref": first_bucket},
                    }
                }
            }
        },
        "Resources": resources,
    }


def main() -> int:
    json.dump(template(), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
