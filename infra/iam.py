"""The permissions of Shipyard's roles on AWS, by name, so resources.json can say what each
function may do (`functions.<name>.tables`, the tables it reads or writes, and
`functions.<name>.access`, permission sets) and this module says what that means in IAM.

Every statement names the template's own resources (a table, the bucket under one prefix, a
queue, the key, the state machine, the build project, the apps' functions). The only `*`
resources are for the actions AWS defines on no resource at all (RESOURCELESS_ACTIONS).
"""

from __future__ import annotations

from typing import Any

PREFIX = "shipyard"

# Actions that IAM only accepts on Resource "*" (the Service Authorization Reference lists
# no resource type for them). Nothing else may use "*".
# What the state machine's log delivery and X-Ray tracing need: all of them resourceless.
LOG_DELIVERY_AND_TRACING = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
)
RESOURCELESS_ACTIONS = frozenset(
    {
        "sqs:ListQueues",
        "dynamodb:ListStreams",
        "ecr:GetAuthorizationToken",
        *LOG_DELIVERY_AND_TRACING,
    }
)

# What the store layer (chalicelib/store/dynamo.py) calls on a table, by access level.
TABLE_READ_ACTIONS = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"]
TABLE_ACTIONS = {
    "read": TABLE_READ_ACTIONS,
    "write": [
        *TABLE_READ_ACTIONS,
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:TransactWriteItems",
        "dynamodb:ConditionCheckItem",
    ],
}
# What a function does to the apps' Lambda functions to take a deployment down.
APP_STOP_ACTIONS = [
    "lambda:GetAlias",
    "lambda:ListVersionsByFunction",
    "lambda:DeleteFunctionUrlConfig",
    "lambda:DeleteAlias",
    "lambda:DeleteFunction",
]
APP_DEPLOY_ACTIONS = [
    *APP_STOP_ACTIONS,
    "lambda:GetFunctionConfiguration",
    "lambda:GetFunctionUrlConfig",
    "lambda:CreateFunction",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
    "lambda:PublishVersion",
    "lambda:CreateAlias",
    "lambda:UpdateAlias",
    "lambda:CreateFunctionUrlConfig",
    "lambda:AddPermission",
    "lambda:TagResource",
]


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _allow(actions: list[str] | str, resources: Any, condition: dict | None = None) -> dict:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def app_functions_arn() -> list[dict[str, str]]:
    """The apps' Lambda functions (chalicelib/runtimes/aws_lambda.py), with their qualifiers."""
    base = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
    return [_sub(base + f"{PREFIX}-app-*"), _sub(base + f"{PREFIX}-app-*:*")]


def app_log_groups_arn() -> dict[str, str]:
    """The log groups of the apps' Lambda functions (chalicelib/runtimes/aws_lambda.py);
    the trailing `*` also matches the `:*` form some logs actions are authorised on."""
    return _sub(
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
        f"/aws/lambda/{PREFIX}-app-*"
    )


def build_secrets_arn() -> dict[str, str]:
    """The SSM parameters of builds' secret env values: /shipyard/builds/<deployment>/<key>."""
    return _sub(
        f"arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter/{PREFIX}/builds/*"
    )


def object_arn(bucket: str, prefix: str) -> dict[str, str]:
    return _sub(f"${{{bucket}.Arn}}/{prefix}/*")


class Names:
    """The logical ids the permission sets point at."""

    def __init__(self, bucket: str, key: str, machine: str, project: str):
        self.bucket = bucket
        self.key = key
        self.machine = machine
        self.project = project

    @staticmethod
    def queue(name: str) -> str:
        return "Queue" + "".join(part.capitalize() for part in name.split("-"))

    @staticmethod
    def table(name: str) -> str:
        """The logical id of a table of resources.json (`api_keys`: TableShipyardApiKeys)."""
        return f"Table{PREFIX.capitalize()}" + "".join(p.capitalize() for p in name.split("_"))


def tables(declared: dict[str, str]) -> list[dict[str, Any]]:
    """The statements of a function's `tables` (table name -> "read" or "write"): each
    level's actions on those tables and their indexes, and on no other table."""
    unknown = set(declared.values()) - set(TABLE_ACTIONS)
    if unknown:
        raise ValueError(f"unknown table access {sorted(unknown)} in resources.json")
    found = []
    for level, actions in TABLE_ACTIONS.items():
        arns: list[Any] = []
        for name in sorted(t for t, declared_level in declared.items() if declared_level == level):
            table = Names.table(name)
            arns += [{"Fn::GetAtt": [table, "Arn"]}, _sub(f"${{{table}.Arn}}/index/*")]
        if arns:
            found.append(_allow(actions, arns))
    return found


def access(name: str, names: Names) -> list[dict[str, Any]]:
    """The statements of one permission set of resources.json (`functions.*.access`)."""
    kind, _, rest = name.partition(":")
    key_arn = {"Fn::GetAtt": [names.key, "Arn"]}
    executions = _sub(
        "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"
        f"${{{names.machine}.Name}}:*"
    )
    if name == "health":
        return [
            _allow("dynamodb:DescribeTable", {"Fn::GetAtt": [Names.table("projects"), "Arn"]}),
            # HeadBucket; it is also what makes HeadObject on an upload not there yet a 404
            # (objects.size_of), not a 403.
            _allow("s3:ListBucket", {"Fn::GetAtt": [names.bucket, "Arn"]}),
            _allow("sqs:ListQueues", "*"),
        ]
    if kind == "objects":
        verb, _, prefix = rest.partition(":")
        if verb == "read":
            return [_allow("s3:GetObject", object_arn(names.bucket, prefix))]
        if verb == "write":
            return [_allow("s3:PutObject", object_arn(names.bucket, prefix))]
        if verb == "delete":
            prefixes = ["uploads", "clones", "env", "artifacts"]
            return [
                _allow("s3:DeleteObject", [object_arn(names.bucket, p) for p in prefixes]),
                _allow(
                    "s3:ListBucket",
                    {"Fn::GetAtt": [names.bucket, "Arn"]},
                    {"StringLike": {"s3:prefix": [f"{p}/*" for p in prefixes]}},
                ),
            ]
    if kind == "key":
        action = {"encrypt": "kms:Encrypt", "decrypt": "kms:Decrypt", "data-key": None}[rest]
        return [_allow(action or "kms:GenerateDataKey", key_arn)]
    if kind == "queue":
        queue, _, verb = rest.partition(":")
        arn = {"Fn::GetAtt": [Names.queue(queue), "Arn"]}
        actions = {
            "send": ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
            "url": ["sqs:GetQueueUrl"],
            "consume": [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            ],
        }[verb]
        return [_allow(actions, arn)]
    if kind == "stream":
        # What Lambda's event source mapping does with the function's role to read a
        # table's stream (`rest` is the table's logical id).
        return [
            _allow(
                ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
                {"Fn::GetAtt": [rest, "StreamArn"]},
            ),
            _allow("dynamodb:ListStreams", "*"),
        ]
    if name == "workflow:start":
        return [_allow("states:StartExecution", {"Ref": names.machine})]
    if name == "workflow:stop":
        return [_allow(["states:StopExecution", "states:DescribeExecution"], executions)]
    if name == "workflow:answer":
        return [
            _allow(
                ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"],
                {"Ref": names.machine},
            )
        ]
    if name == "build:secrets":
        # The SecureStrings a build's secret env values travel in (builders/codebuild.py).
        return [
            _allow(
                ["ssm:PutParameter", "ssm:DeleteParameters", "ssm:GetParametersByPath"],
                build_secrets_arn(),
            )
        ]
    if name == "build:start":
        return [_allow("codebuild:StartBuild", {"Fn::GetAtt": [names.project, "Arn"]})]
    if name == "build:stop":
        return [
            _allow(
                ["codebuild:StopBuild", "codebuild:BatchGetBuilds"],
                {"Fn::GetAtt": [names.project, "Arn"]},
            )
        ]
    if name == "apps:stop":
        return [_allow(APP_STOP_ACTIONS, app_functions_arn())]
    if name == "apps:logs":
        # The runtime logs: the version of a deployment (its alias), then its log events.
        return [
            _allow(["lambda:GetAlias", "lambda:ListVersionsByFunction"], app_functions_arn()),
            _allow("logs:FilterLogEvents", app_log_groups_arn()),
        ]
    if name == "apps:deploy":
        return [
            _allow(APP_DEPLOY_ACTIONS, app_functions_arn()),
            _allow(
                "iam:PassRole",
                {"Fn::GetAtt": ["AppRole", "Arn"]},
                {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
            ),
            # The apps' log groups, made before their functions to set their retention.
            _allow(["logs:CreateLogGroup", "logs:PutRetentionPolicy"], app_log_groups_arn()),
            # Lambda reads the image as the caller when it creates or updates a function.
            _allow(
                ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                {"Fn::GetAtt": ["AppImages", "Arn"]},
            ),
        ]
    raise ValueError(f"unknown permission set {name!r} in resources.json")


def role(service: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
    """An IAM role for `service` with one inline policy."""
    properties: dict[str, Any] = {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        },
        "Policies": [
            {
                "PolicyName": PREFIX,
                "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
            }
        ],
    }
    return {"Type": "AWS::IAM::Role", "Properties": properties}


def policies(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "PolicyName": PREFIX,
            "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
        }
    ]
