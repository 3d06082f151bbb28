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

from infra.provision import INFRA, declaration, table_definitions, ttl_attributes

PREFIX = "shipyard"


def _logical(kind: str, name: str) -> str:
    return kind + "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]", name))


def _envelope(code: str, message: str) -> str:
    return json.dumps(
        {"error": {"code": code, "message": message, "request_id": "$context.requestId"}}
    )


def _state_machine(machine: str, definition_file: str) -> dict[str, Any]:
    """A workflow whose tasks are SQS messages to the deploy-tasks queue (its only right)."""
    role = _logical("Role", f"{machine}-workflow")
    send = {
        "Effect": "Allow",
        "Action": "sqs:SendMessage",
        "Resource": {"Fn::GetAtt": [_logical("Queue", "deploy-tasks"), "Arn"]},
    }
    return {
        **_role(role, "states.amazonaws.com", [send]),
        _logical("StateMachine", machine): {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineName": f"{PREFIX}-{machine}",
                "DefinitionString": (INFRA / definition_file).read_text(),
                "RoleArn": {"Fn::GetAtt": [role, "Arn"]},
            },
        },
    }


def _role(logical: str, service: str, statements: list[dict], managed=()) -> dict[str, Any]:
    return {
        logical: {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": service},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "ManagedPolicyArns": list(managed),
                "Policies": [
                    {
                        "PolicyName": "shipyard",
                        "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                    }
                ]
                if statements
                else [],
            },
        }
    }


def _build_resources(spec: dict[str, Any], bucket: str) -> dict[str, Any]:
    """The CodeBuild projects (privileged: they also build the apps' images), the ECR
    repository those images go to, and the role the apps run with on Lambda."""
    resources: dict[str, Any] = {
        "AppImages": {
            "Type": "AWS::ECR::Repository",
            "Properties": {"RepositoryName": f"{PREFIX}-apps"},
        },
        **_role(
            "AppRole",
            "lambda.amazonaws.com",
            [],
            ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
        ),
        **_role(
            "CodeBuildRole",
            "codebuild.amazonaws.com",
            [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject"],
                    "Resource": {"Fn::Sub": f"${{{bucket}.Arn}}/*"},
                },
                {
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": "*",
                },
                {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Action": [
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:InitiateLayerUpload",
                        "ecr:UploadLayerPart",
                        "ecr:CompleteLayerUpload",
                        "ecr:PutImage",
                        "ecr:BatchGetImage",
                    ],
                    "Resource": {"Fn::GetAtt": ["AppImages", "Arn"]},
                },
            ],
        ),
    }
    for name, project in spec.get("codebuild_projects", {}).items():
        resources[_logical("CodeBuild", name)] = {
            "Type": "AWS::CodeBuild::Project",
            "Properties": {
                "Name": f"{PREFIX}-{name}",
                "ServiceRole": {"Fn::GetAtt": ["CodeBuildRole", "Arn"]},
                "Source": {"Type": "NO_SOURCE", "BuildSpec": "version: 0.2"},
                "Artifacts": {"Type": "NO_ARTIFACTS"},
                "Environment": {
                    "Type": "LINUX_CONTAINER",
                    "Image": project["image"],
                    "ComputeType": project["compute_type"],
                    "PrivilegedMode": True,
                },
                "TimeoutInMinutes": project["timeout_minutes"],
            },
        }
    return resources


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
    for machine, definition_file in spec.get("state_machines", {}).items():
        resources.update(_state_machine(machine, definition_file))
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
    resources.update(_build_resources(spec, first_bucket))
    # Chalice names each SQS consumer's function; it must not be wired before its queue.
    for queue, function in spec.get("queue_consumers", {}).items():
        resources[function] = {"DependsOn": [_logical("Queue", queue)]}
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
                        "SHIPYARD_DEPLOY_WORKFLOW_ARN": {"Ref": _logical("StateMachine", "deploy")},
                        "SHIPYARD_IMAGE_REPOSITORY": {"Fn::GetAtt": ["AppImages", "RepositoryUri"]},
                        "SHIPYARD_APP_ROLE_ARN": {"Fn::GetAtt": ["AppRole", "Arn"]},
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
