"""Render infra/resources.json as a CloudFormation template to merge into chalice's own:

    python -m infra.cloudformation > infra/build/resources.json
    chalice package --stage prod --merge-template infra/build/resources.json infra/build/out

The same declaration that provision.py creates locally, so AWS and the local stack agree.
Chalice generates the functions, their roles, the API and the event sources; the merge
replaces each role's policy with the function's tables and permission sets (infra/iam.py)
and sets each function's timeout, memory, log group and concurrency from `functions` in
resources.json.
API Gateway's own answers (no route, bad method) are mapped to the contract's envelope.
Checks that checkov may skip are skipped on the resource, each with its reason.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from infra import iam
from infra.provision import INFRA, declaration, table_definitions, ttl_attributes

PREFIX = "shipyard"
KEY = "KeyShipyard"
ALARMS = "AlarmTopic"
# Async invocations (EventBridge rule, schedule) that fail twice land here.
FAILED_EVENTS = "FailedEvents"
RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653]

PARAMETERS: dict[str, Any] = {
    "CursorSecret": {
        "Type": "String",
        "NoEcho": True,
        "MinLength": 32,
        "Description": "HMAC secret of pagination cursors (e.g. openssl rand -hex 32)",
    },
    "LogRetentionDays": {
        "Type": "Number",
        "Default": 30,
        "AllowedValues": RETENTION_DAYS,
        "Description": "Days every log group of the stack keeps its events",
    },
    "DeletionProtection": {
        "Type": "String",
        "Default": "true",
        "AllowedValues": ["true", "false"],
        "Description": "DynamoDB deletion protection (set false before deleting the stack)",
    },
    "BuildsConcurrency": {
        "Type": "Number",
        "Default": 10,
        "MinValue": 0,
        "Description": "Concurrency reserved for (and capping) the builds consumer: 0 (none, "
        "for accounts whose Lambda concurrency limit is below 110) or 2 and up",
    },
    "AlarmEmail": {
        "Type": "String",
        "Default": "",
        "Description": "Address told when a dead-letter queue holds a message (empty: none)",
    },
    "ApiGatewayLogsRole": {
        "Type": "String",
        "Default": "create",
        "AllowedValues": ["create", "existing"],
        "Description": "create: set this region's API Gateway CloudWatch role (needed for "
        "access logs); existing: the account already has one",
    },
}
CONDITIONS: dict[str, Any] = {
    "Protected": {"Fn::Equals": [{"Ref": "DeletionProtection"}, "true"]},
    "ReserveBuilds": {"Fn::Not": [{"Fn::Equals": [{"Ref": "BuildsConcurrency"}, "0"]}]},
    "HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]},
    "CreateApiGatewayRole": {"Fn::Equals": [{"Ref": "ApiGatewayLogsRole"}, "create"]},
}

# Why each skipped checkov check does not apply, by the kind of resource it is skipped on.
NO_VPC = "No private resources to reach: every dependency is an AWS API, and a VPC needs NAT"
SKIPS = {
    "function_vpc": ("CKV_AWS_117", NO_VPC),
    "api_dlq": (
        "CKV_AWS_116",
        "Invoked synchronously by API Gateway: a failure is the caller's 5xx, nothing to redeliver",
    ),
    "sqs_dlq": (
        "CKV_AWS_116",
        "Invoked synchronously by the SQS event source: failed messages go to the queue's DLQ",
    ),
    "api_concurrency": (
        "CKV_AWS_115",
        "The tiers rate-limit each workspace; a function-wide cap would throttle all at once",
    ),
    "deploy_concurrency": (
        "CKV_AWS_115",
        "One invocation per step of a running deploy workflow: load follows deployments",
    ),
    "webhook_concurrency": (
        "CKV_AWS_115",
        "A delivery stays due in its table until attempted: one throttled is sent by the retry"
        " schedule, so a cap would only delay every workspace's webhooks",
    ),
    "event_concurrency": (
        "CKV_AWS_115",
        "One invocation per CodeBuild state change: bounded by the builds' concurrency",
    ),
    "stream_dlq": (
        "CKV_AWS_116",
        "Invoked by its stream's event source mapping: a failed batch is retried in order until"
        " it succeeds or expires, then reported to the failed-events queue",
    ),
    "stream_concurrency": (
        "CKV_AWS_115",
        "One invocation per stream shard at a time: load follows the table's writes",
    ),
    "schedule_concurrency": (
        "CKV_AWS_115",
        "One invocation a minute; every step is a conditional write, so an overlap is harmless",
    ),
    "api_cache": (
        "CKV_AWS_120",
        "Answers are per credential and live (statuses, logs): a cache would serve stale data",
    ),
    "table_cmk": (
        "CKV_AWS_119",
        "Encrypted at rest with AWS's key; secrets in items are already sealed with the CMK",
    ),
    "ecr_cmk": (
        "CKV_AWS_136",
        "KMS-encrypted with the AWS-managed ECR key: a CMK would need grants for every puller",
    ),
    "queue_sse": (
        "CKV_AWS_27",
        "Encrypted at rest by SSE-SQS (SqsManagedSseEnabled); this check only knows KMS keys",
    ),
    "log_bucket_logging": (
        "CKV_AWS_18",
        "The access-log bucket itself: logging its own writes would log forever",
    ),
}


# Why the consumer of each queue reserves no concurrency (one that does, like the builds
# consumer, needs none): a queue added without either does not render.
UNRESERVED_CONSUMERS = {
    "deploy-tasks": "deploy_concurrency",
    "webhook-deliveries": "webhook_concurrency",
}


def logical_id(kind: str, name: str) -> str:
    """The logical id of a declared resource: `logical_id("Queue", "deploy-tasks")` is
    QueueDeployTasks."""
    return kind + "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]", name))


def _skip(resource: dict[str, Any], *kinds: str) -> dict[str, Any]:
    skips = resource.setdefault("Metadata", {}).setdefault("checkov", {}).setdefault("skip", [])
    for kind in kinds:
        check, reason = SKIPS[kind]
        skips.append({"id": check, "comment": reason})
    return resource


def _envelope(code: str, message: str) -> str:
    return json.dumps(
        {"error": {"code": code, "message": message, "request_id": "$context.requestId"}}
    )


def _log_group(name: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": name,
            "RetentionInDays": {"Ref": "LogRetentionDays"},
            "KmsKeyId": {"Fn::GetAtt": [KEY, "Arn"]},
        },
    }


def _key() -> dict[str, Any]:
    """The key that seals env secrets and encrypts the log groups, the alarm topic and the
    functions' environment. The account administers it; the services use it for those."""
    logs = {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Account",
                "Effect": "Allow",
                "Principal": {
                    "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
                },
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "LogGroups",
                "Effect": "Allow",
                "Principal": {"Service": logs},
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": {
                            "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:"
                            "${AWS::AccountId}:log-group:*"
                        }
                    }
                },
            },
            {
                "Sid": "Alarms",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            },
        ],
    }
    return {
        "Type": "AWS::KMS::Key",
        "Properties": {
            "Description": "Shipyard: env secrets, logs, alarms",
            "EnableKeyRotation": True,
            "KeyPolicy": policy,
        },
    }


def _tables(spec: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    expiring = {f"{PREFIX}-{name}": attribute for name, attribute in ttl_attributes().items()}
    for definition in table_definitions(PREFIX):
        name = definition["TableName"]
        table = spec["tables"][name.removeprefix(f"{PREFIX}-")]
        properties = dict(definition)
        if "stream" in table:
            # CloudFormation's form of CreateTable's StreamSpecification.
            properties["StreamSpecification"] = {"StreamViewType": table["stream"]}
        if name in expiring:
            properties["TimeToLiveSpecification"] = {
                "AttributeName": expiring[name],
                "Enabled": True,
            }
        properties["PointInTimeRecoverySpecification"] = {
            "PointInTimeRecoveryEnabled": "no_backup" not in table
        }
        properties["DeletionProtectionEnabled"] = {"Fn::If": ["Protected", True, False]}
        resource = {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Retain" if "no_backup" not in table else "Delete",
            "UpdateReplacePolicy": "Retain" if "no_backup" not in table else "Delete",
            "Properties": properties,
        }
        _skip(resource, "table_cmk")
        if "no_backup" in table:
            resource["Metadata"]["checkov"]["skip"].append(
                {"id": "CKV_AWS_28", "comment": table["no_backup"].capitalize()}
            )
        resources[logical_id("Table", name)] = resource
    return resources


def _alarm(queue_logical: str, what: str) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": f"{what} holds messages that failed every delivery",
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [
                {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_logical, "QueueName"]}}
            ],
            "Statistic": "Maximum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": ALARMS}],
        },
    }


def _dead_letter_queue(name: str) -> dict[str, Any]:
    return _skip(
        {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": name,
                "SqsManagedSseEnabled": True,
                # The longest SQS keeps a message: time to find out why it failed.
                "MessageRetentionPeriod": 1209600,
            },
        },
        "queue_sse",
    )


def _queues(spec: dict[str, Any]) -> dict[str, Any]:
    """Each declared queue with its dead-letter queue and an alarm on that one's depth."""
    resources: dict[str, Any] = {}
    for queue, attributes in spec["queues"].items():
        logical = logical_id("Queue", queue)
        dead = logical + "Dead"
        settings = {k: v for k, v in attributes.items() if k != "max_receives"}
        resources[logical] = _skip(
            {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": f"{PREFIX}-{queue}",
                    **settings,
                    "SqsManagedSseEnabled": True,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": [dead, "Arn"]},
                        "maxReceiveCount": attributes["max_receives"],
                    },
                },
            },
            "queue_sse",
        )
        resources[dead] = _dead_letter_queue(f"{PREFIX}-{queue}-dead")
        resources[dead + "Alarm"] = _alarm(dead, f"{PREFIX}-{queue}-dead")
    resources[FAILED_EVENTS] = _dead_letter_queue(f"{PREFIX}-failed-events")
    resources[FAILED_EVENTS + "Alarm"] = _alarm(FAILED_EVENTS, f"{PREFIX}-failed-events")
    resources[ALARMS] = {
        "Type": "AWS::SNS::Topic",
        "Properties": {"KmsMasterKeyId": {"Ref": KEY}},
    }
    resources[ALARMS + "Email"] = {
        "Type": "AWS::SNS::Subscription",
        "Condition": "HasAlarmEmail",
        "Properties": {
            "TopicArn": {"Ref": ALARMS},
            "Protocol": "email",
            "Endpoint": {"Ref": "AlarmEmail"},
        },
    }
    return resources


def _state_machine(machine: str, definition_file: str) -> dict[str, Any]:
    """A workflow whose tasks are SQS messages to the deploy-tasks queue (its only right
    on Shipyard's resources), logging its errors to its own log group."""
    role = logical_id("Role", f"{machine}-workflow")
    logs = logical_id("StateMachine", machine) + "Logs"
    statements = [
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": [logical_id("Queue", "deploy-tasks"), "Arn"]},
        },
        {
            # Log delivery and X-Ray: actions AWS defines on no resource (iam.RESOURCELESS_ACTIONS).
            "Effect": "Allow",
            "Action": list(iam.LOG_DELIVERY_AND_TRACING),
            "Resource": "*",
        },
    ]
    return {
        role: iam.role("states.amazonaws.com", statements),
        logs: _log_group({"Fn::Sub": f"/aws/vendedlogs/states/${{AWS::StackName}}-{machine}"}),
        logical_id("StateMachine", machine): {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineName": f"{PREFIX}-{machine}",
                "DefinitionString": (INFRA / definition_file).read_text(),
                "RoleArn": {"Fn::GetAtt": [role, "Arn"]},
                "LoggingConfiguration": {
                    "Level": "ERROR",
                    # Inputs carry task tokens: log what failed, not the data.
                    "IncludeExecutionData": False,
                    "Destinations": [
                        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [logs, "Arn"]}}}
                    ],
                },
                "TracingConfiguration": {"Enabled": True},
            },
        },
    }


ACCESS_LOGS = "BucketAccessLogs"
ENCRYPTED = {
    "ServerSideEncryptionConfiguration": [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
}
PRIVATE = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}


def _access_logs(buckets: list[str]) -> dict[str, Any]:
    """The bucket S3 writes the other buckets' access logs to, kept LogRetentionDays."""
    bucket = {
        "Type": "AWS::S3::Bucket",
        "Properties": {
            "PublicAccessBlockConfiguration": PRIVATE,
            "BucketEncryption": ENCRYPTED,
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {
                "Rules": [
                    {
                        "Id": "retention",
                        "Status": "Enabled",
                        "ExpirationInDays": {"Ref": "LogRetentionDays"},
                        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                    }
                ]
            },
        },
    }
    policy = {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": {"Ref": ACCESS_LOGS},
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ServerAccessLogs",
                        "Effect": "Allow",
                        "Principal": {"Service": "logging.s3.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": {"Fn::Sub": f"${{{ACCESS_LOGS}.Arn}}/*"},
                        "Condition": {
                            "ArnLike": {
                                "aws:SourceArn": [{"Fn::GetAtt": [name, "Arn"]} for name in buckets]
                            },
                            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                        },
                    }
                ],
            },
        },
    }
    return {ACCESS_LOGS: _skip(bucket, "log_bucket_logging"), ACCESS_LOGS + "Policy": policy}


def _bucket(logical: str) -> dict[str, Any]:
    resource = {
        "Type": "AWS::S3::Bucket",
        "Properties": {
            "LoggingConfiguration": {
                "DestinationBucketName": {"Ref": ACCESS_LOGS},
                "LogFilePrefix": f"{logical}/",
            },
            "PublicAccessBlockConfiguration": PRIVATE,
            "BucketEncryption": ENCRYPTED,
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {
                "Rules": [
                    {
                        "Id": "uploads",
                        "Prefix": "uploads/",
                        "Status": "Enabled",
                        "ExpirationInDays": 7,
                    },
                    {
                        # A git source's clone is only the input of its build, like an upload.
                        "Id": "clones",
                        "Prefix": "clones/",
                        "Status": "Enabled",
                        "ExpirationInDays": 7,
                    },
                    {
                        # Versioning keeps an overwritten or deleted object a week, no longer.
                        "Id": "old-versions",
                        "Status": "Enabled",
                        "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    },
                ]
            },
        },
    }
    return resource


def _build_resources(spec: dict[str, Any], bucket: str) -> dict[str, Any]:
    """The CodeBuild project (privileged: it also builds the apps' images), the ECR
    repository those images go to, and the role the apps run with on Lambda."""
    project = logical_id("CodeBuild", "build")
    logs = project + "Logs"
    resources: dict[str, Any] = {
        "AppImages": _skip(
            {
                "Type": "AWS::ECR::Repository",
                "Properties": {
                    "RepositoryName": f"{PREFIX}-apps",
                    # Tags are deployment ids: one image each, never moved.
                    "ImageTagMutability": "IMMUTABLE",
                    "ImageScanningConfiguration": {"ScanOnPush": True},
                    "EncryptionConfiguration": {"EncryptionType": "KMS"},
                    # Deleting the stack deletes the images (the apps' functions go first).
                    "EmptyOnDelete": True,
                    "RepositoryPolicyText": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "AppFunctions",
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                                "Condition": {
                                    "StringLike": {"aws:sourceArn": iam.app_functions_arn()[0]}
                                },
                            }
                        ],
                    },
                },
            },
            "ecr_cmk",
        ),
        # The apps' own code runs with this: its logs and nothing of Shipyard's.
        "AppRole": iam.role(
            "lambda.amazonaws.com",
            [
                {
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": iam.app_log_groups_arn(),
                }
            ],
        ),
        logs: _log_group(f"/aws/codebuild/{PREFIX}-build"),
        "CodeBuildRole": iam.role(
            "codebuild.amazonaws.com",
            [
                # The source, uploaded or cloned by a clone build (builders/codebuild.py),
                # and nothing else of the bucket (not the env snapshots).
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                    "Resource": [
                        iam.object_arn(bucket, "uploads"),
                        iam.object_arn(bucket, "clones"),
                    ],
                },
                # What builds make: artifacts, and the clones of git sources.
                {
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": [
                        iam.object_arn(bucket, "artifacts"),
                        iam.object_arn(bucket, "clones"),
                    ],
                },
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetBucketAcl", "s3:GetBucketLocation"],
                    "Resource": {"Fn::GetAtt": [bucket, "Arn"]},
                },
                {
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": {"Fn::GetAtt": [logs, "Arn"]},
                },
                # The secret env values of builds, which CodeBuild resolves (PARAMETER_STORE).
                {
                    "Effect": "Allow",
                    "Action": "ssm:GetParameters",
                    "Resource": iam.build_secrets_arn(),
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
    for name, declared in spec.get("codebuild_projects", {}).items():
        resources[logical_id("CodeBuild", name)] = {
            "Type": "AWS::CodeBuild::Project",
            "Properties": {
                "Name": f"{PREFIX}-{name}",
                "ServiceRole": {"Fn::GetAtt": ["CodeBuildRole", "Arn"]},
                "Source": {"Type": "NO_SOURCE", "BuildSpec": "version: 0.2"},
                "Artifacts": {"Type": "NO_ARTIFACTS"},
                "Environment": {
                    "Type": "LINUX_CONTAINER",
                    "Image": declared["image"],
                    "ComputeType": declared["compute_type"],
                    "PrivilegedMode": True,
                },
                "TimeoutInMinutes": declared["timeout_minutes"],
                "LogsConfig": {"CloudWatchLogs": {"Status": "ENABLED", "GroupName": {"Ref": logs}}},
            },
        }
    return resources


def _api(spec: dict[str, Any]) -> dict[str, Any]:
    """What the merge adds to chalice's RestAPI: access logs, tracing, and the error
    envelope on API Gateway's own answers."""
    resources: dict[str, Any] = {
        "RestAPI": _skip(
            {
                "Properties": {
                    "TracingEnabled": True,
                    "AccessLogSetting": {
                        "DestinationArn": {"Fn::GetAtt": ["RestAPIAccessLogs", "Arn"]},
                        "Format": json.dumps(
                            {
                                "request_id": "$context.requestId",
                                "ip": "$context.identity.sourceIp",
                                "method": "$context.httpMethod",
                                "path": "$context.path",
                                "status": "$context.status",
                                "latency_ms": "$context.responseLatency",
                                "at": "$context.requestTimeEpoch",
                            }
                        ),
                    },
                }
            },
            "api_cache",
        ),
        "RestAPIAccessLogs": _log_group({"Fn::Sub": "/aws/apigateway/${AWS::StackName}-access"}),
        "ApiGatewayCloudWatchRole": {
            **iam.role(
                "apigateway.amazonaws.com",
                [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "logs:CreateLogGroup",
                            "logs:CreateLogStream",
                            "logs:DescribeLogStreams",
                            "logs:PutLogEvents",
                        ],
                        "Resource": {
                            "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:"
                            "${AWS::AccountId}:log-group:*"
                        },
                    },
                    {"Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"},
                ],
            ),
            "Condition": "CreateApiGatewayRole",
        },
        "ApiGatewayAccount": {
            "Type": "AWS::ApiGateway::Account",
            "Condition": "CreateApiGatewayRole",
            "Properties": {
                "CloudWatchRoleArn": {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}
            },
        },
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
        resources[logical_id("GatewayResponse", response_type.lower())] = {
            "Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": properties,
        }
    return resources


def _functions(spec: dict[str, Any], names: iam.Names) -> dict[str, Any]:
    """Merged over chalice's functions and roles: each role's policy is only the function's
    `tables` and what its `access` needs, plus its log group, its queue and its dead-letter
    queue."""
    resources: dict[str, Any] = {}
    consumers = {function: queue for queue, function in spec.get("queue_consumers", {}).items()}
    for function, declared in spec["functions"].items():
        logs = function + "Logs"
        resources[logs] = _log_group({"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{function}"})
        statements = [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": {"Fn::GetAtt": [logs, "Arn"]},
            }
        ]
        statements += iam.tables(declared["tables"])
        for name in declared["access"]:
            statements += iam.access(name, names)
        properties: dict[str, Any] = {
            "Timeout": declared["timeout_s"],
            "MemorySize": declared["memory_mb"],
            "LoggingConfig": {"LogGroup": {"Ref": logs}, "LogFormat": "Text"},
            "KmsKeyArn": {"Fn::GetAtt": [KEY, "Arn"]},
        }
        resource: dict[str, Any] = {"Properties": properties}
        trigger = declared["trigger"]
        if function in consumers:
            queue = consumers[function]
            statements += iam.access(f"queue:{queue}:consume", names)
            # Chalice names the queue by its name: it must not be wired before the queue.
            resource["DependsOn"] = [logical_id("Queue", queue)]
        if trigger in ("event", "schedule"):
            properties["DeadLetterQueue"] = {
                "Type": "SQS",
                "TargetArn": {"Fn::GetAtt": [FAILED_EVENTS, "Arn"]},
            }
            statements.append(
                {
                    "Effect": "Allow",
                    "Action": "sqs:SendMessage",
                    "Resource": {"Fn::GetAtt": [FAILED_EVENTS, "Arn"]},
                }
            )
        if trigger == "stream":
            table = iam.Names.table(declared["stream"])
            statements += iam.access(f"stream:{table}", names)
            statements.append(
                {
                    "Effect": "Allow",
                    "Action": "sqs:SendMessage",
                    "Resource": {"Fn::GetAtt": [FAILED_EVENTS, "Arn"]},
                }
            )
            # app.py names each stream by its table only (its ARN exists once the table
            # does): the event source mapping reads the table's own stream. A record is
            # retried until its handler succeeds (the stream keeps it 24 hours); a batch
            # that fails is halved to find the record at fault, and one that expires is
            # reported to the failed-events queue.
            properties["Events"] = {
                function + "DynamodbEventSource": {
                    "Properties": {
                        "Stream": {"Fn::GetAtt": [table, "StreamArn"]},
                        "BisectBatchOnFunctionError": True,
                        "DestinationConfig": {
                            "OnFailure": {
                                "Type": "SQS",
                                "Destination": {"Fn::GetAtt": [FAILED_EVENTS, "Arn"]},
                            }
                        },
                    }
                }
            }
        reserved = declared.get("reserved_concurrency")
        if reserved:
            limit = {"Fn::If": ["ReserveBuilds", {"Ref": reserved}, {"Ref": "AWS::NoValue"}]}
            properties["ReservedConcurrentExecutions"] = limit
            if function in consumers:
                # The poller stays within the reservation: a throttled message would count
                # as a receive and could reach the DLQ without ever running.
                properties["Events"] = {
                    function + "SqsEventSource": {
                        "Properties": {"ScalingConfig": {"MaximumConcurrency": limit}}
                    }
                }
        skips = ["function_vpc"]
        if trigger == "sqs" and not reserved:
            queue = consumers[function]
            if queue not in UNRESERVED_CONSUMERS:
                raise ValueError(
                    f"{function} consumes {queue} with no reserved_concurrency: declare one, or"
                    " say why it needs none in UNRESERVED_CONSUMERS and SKIPS"
                )
            skips.append(UNRESERVED_CONSUMERS[queue])
        skips += {
            "api": ["api_dlq", "api_concurrency"],
            "sqs": ["sqs_dlq"],
            "event": ["event_concurrency"],
            "schedule": ["schedule_concurrency"],
            "stream": ["stream_dlq", "stream_concurrency"],
        }[trigger]
        resources[function] = _skip(resource, *skips)
        role = "ApiHandlerRole" if function == "APIHandler" else function + "Role"
        resources[role] = {"Properties": {"Policies": iam.policies(statements)}}
    return resources


def template() -> dict[str, Any]:
    spec = declaration()
    resources: dict[str, Any] = {KEY: _key()}
    resources[KEY + "Alias"] = {
        "Type": "AWS::KMS::Alias",
        "Properties": {"AliasName": f"alias/{PREFIX}", "TargetKeyId": {"Ref": KEY}},
    }
    resources.update(_tables(spec))
    resources.update(_queues(spec))
    machines = spec.get("state_machines", {})
    for machine, definition_file in machines.items():
        resources.update(_state_machine(machine, definition_file))
    bucket = logical_id("Bucket", spec["buckets"][0])
    buckets = [logical_id("Bucket", name) for name in spec["buckets"]]
    for logical in buckets:
        resources[logical] = _bucket(logical)
    resources.update(_access_logs(buckets))
    resources.update(_api(spec))
    resources.update(_build_resources(spec, bucket))
    names = iam.Names(
        bucket=bucket,
        key=KEY,
        machine=logical_id("StateMachine", "deploy"),
        project=logical_id("CodeBuild", "build"),
    )
    resources.update(_functions(spec, names))
    return {
        "Parameters": PARAMETERS,
        "Conditions": CONDITIONS,
        "Globals": {
            "Function": {
                "Environment": {
                    "Variables": {
                        "SHIPYARD_CURSOR_SECRET": {"Ref": "CursorSecret"},
                        "SHIPYARD_BUCKET": {"Ref": bucket},
                        "SHIPYARD_DEPLOY_WORKFLOW_ARN": {"Ref": names.machine},
                        "SHIPYARD_IMAGE_REPOSITORY": {"Fn::GetAtt": ["AppImages", "RepositoryUri"]},
                        "SHIPYARD_APP_ROLE_ARN": {"Fn::GetAtt": ["AppRole", "Arn"]},
                        "SHIPYARD_APP_LOG_RETENTION_DAYS": {"Ref": "LogRetentionDays"},
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
