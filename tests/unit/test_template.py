"""The template that `make package` builds, checked offline: infra/cloudformation.py's
resources merged, as chalice merges them, over the functions, roles and event sources
chalice renders for app.py. `make infra-lint` runs the same checks (infra/verify.py) on the
real packaged template."""

import copy
import json
from pathlib import Path

import pytest
from chalice.app import (
    CloudWatchEventConfig,
    DynamoDBEventConfig,
    ScheduledEventConfig,
    SQSEventConfig,
)
from chalice.package import TemplateDeepMerger
from chalice.utils import to_cfn_resource_name

import infra.cloudformation
import infra.provision
import infra.verify
from infra import iam
from infra.cloudformation import template
from infra.provision import INFRA, declaration
from infra.verify import problems, statements

ROOT = Path(__file__).resolve().parents[2]


def chalice_template() -> dict:
    """What chalice renders for app.py: each function with its role holding policy.json
    (chalice's defaults: 60 s, 512 MB) and its event source."""
    from app import app

    policy = json.loads((ROOT / ".chalice" / "policy.json").read_text())
    resources: dict = {}

    def function(name: str, role: str, events: dict) -> None:
        resources[role] = {
            "Type": "AWS::IAM::Role",
            "Properties": {"Policies": [{"PolicyName": role, "PolicyDocument": policy}]},
        }
        resources[name] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Timeout": 60,
                "MemorySize": 512,
                "Role": {"Fn::GetAtt": [role, "Arn"]},
                "Events": events,
            },
        }

    function("APIHandler", "ApiHandlerRole", {})
    resources["RestAPI"] = {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "api"}}
    for source in app.event_sources:
        name = to_cfn_resource_name(source.name)
        event_name = name + "Event"
        if isinstance(source, SQSEventConfig):
            event_name = name + "SqsEventSource"
            arn = "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:" + source.queue
            event = {"Type": "SQS", "Properties": {"Queue": {"Fn::Sub": arn}, "BatchSize": 1}}
        elif isinstance(source, CloudWatchEventConfig):
            event = {"Type": "CloudWatchEvent", "Properties": {"Pattern": source.event_pattern}}
        elif isinstance(source, ScheduledEventConfig):
            event = {"Type": "Schedule", "Properties": {"Schedule": source.schedule_expression}}
        elif isinstance(source, DynamoDBEventConfig):
            event_name = to_cfn_resource_name(source.name + "-dynamodb-event-source")
            properties = {"Stream": source.stream_arn, "BatchSize": source.batch_size}
            event = {"Type": "DynamoDB", "Properties": properties}
        else:
            raise AssertionError(f"an event source this test does not know: {source}")
        function(name, name + "Role", {event_name: event})
    return {"Resources": resources}


def packaged() -> dict:
    return TemplateDeepMerger().merge(template(), chalice_template())


@pytest.fixture
def merged():
    return packaged()


def role_of(template_: dict, function: str) -> list[dict]:
    role = template_["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    return statements(template_["Resources"][role])


def actions_of(template_: dict, function: str) -> set[str]:
    found = set()
    for statement in role_of(template_, function):
        action = statement["Action"]
        found |= {action} if isinstance(action, str) else set(action)
    return found


def test_the_packaged_template_breaks_no_rule(merged):
    assert problems(merged) == []


def test_the_state_machine_is_byte_for_byte_the_asl_that_runs_on_moto(merged):
    definition = merged["Resources"]["StateMachineDeploy"]["Properties"]["DefinitionString"]
    assert definition == (INFRA / "deploy-workflow.asl.json").read_text()
    merged["Resources"]["StateMachineDeploy"]["Properties"]["DefinitionString"] = json.dumps(
        json.loads(definition)
    )
    assert any("byte for byte" in p for p in problems(merged))


def test_every_queue_has_a_dead_letter_queue_with_an_alarm_on_its_depth(merged):
    resources = merged["Resources"]
    for queue, attributes in declaration()["queues"].items():
        logical = "Queue" + "".join(part.capitalize() for part in queue.split("-"))
        redrive = resources[logical]["Properties"]["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == attributes["max_receives"]
        dead = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert resources[dead]["Properties"]["QueueName"] == f"shipyard-{queue}-dead"
        alarm = resources[dead + "Alarm"]["Properties"]
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dead, "QueueName"]}
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    del resources["QueueBuilds"]["Properties"]["RedrivePolicy"]
    del resources["QueueDeployTasksDeadAlarm"]
    found = problems(merged)
    assert "QueueBuilds: no dead-letter queue (RedrivePolicy with maxReceiveCount)" in found
    assert "QueueDeployTasksDead: a dead-letter queue without an alarm on its depth" in found


def test_a_queue_added_to_the_declaration_gets_its_dlq_and_alarm(monkeypatch):
    # Given a new queue declared, with its consumer
    spec = declaration()
    spec["queues"]["exports"] = {"VisibilityTimeout": 90, "max_receives": 8}
    spec["queue_consumers"]["exports"] = "OnExport"
    spec["functions"]["OnExport"] = {
        "trigger": "sqs",
        "timeout_s": 60,
        "memory_mb": 256,
        "tables": {"webhooks": "read"},
        "access": [],
    }
    for module in (infra.cloudformation, infra.provision, infra.verify):
        monkeypatch.setattr(module, "declaration", lambda: copy.deepcopy(spec))
    # When it reserves no concurrency and nothing says why, the template does not render
    with pytest.raises(ValueError, match="OnExport consumes exports with no reserved_concurrency"):
        template()
    # When its reason is given and the template is rendered
    monkeypatch.setitem(infra.cloudformation.UNRESERVED_CONSUMERS, "exports", "deploy_concurrency")
    resources = template()["Resources"]
    # Then it has its DLQ, the redrive, the alarm, and its consumer may read it
    queue = resources["QueueExports"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 8
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["QueueExportsDead", "Arn"]
    }
    assert queue["SqsManagedSseEnabled"] is True
    assert resources["QueueExportsDead"]["Properties"]["QueueName"] == "shipyard-exports-dead"
    assert "QueueExportsDeadAlarm" in resources
    consume = statements(resources["OnExportRole"])[-1]
    assert "sqs:ReceiveMessage" in consume["Action"]
    assert consume["Resource"] == {"Fn::GetAtt": ["QueueExports", "Arn"]}


def test_each_queue_consumer_without_reserved_concurrency_says_why_in_its_own_terms():
    # The reason a checkov skip gives is about the function it is on: the webhook worker's
    # is not the deploy worker's
    rendered = template()["Resources"]
    reasons = {}
    for function in declaration()["queue_consumers"].values():
        skips = rendered[function]["Metadata"]["checkov"]["skip"]
        concurrency = [s["comment"] for s in skips if s["id"] == "CKV_AWS_115"]
        if declaration()["functions"][function].get("reserved_concurrency"):
            assert concurrency == [], function
        else:
            reasons[function] = concurrency[0]
    assert "deploy workflow" in reasons["OnDeployTask"]
    assert "webhooks" in reasons["OnWebhookDelivery"]
    assert "deploy" not in reasons["OnWebhookDelivery"]


def test_a_visibility_timeout_must_exceed_its_consumers_timeout(merged):
    for queue, function in declaration()["queue_consumers"].items():
        visibility = declaration()["queues"][queue]["VisibilityTimeout"]
        assert visibility > declaration()["functions"][function]["timeout_s"], queue
    merged["Resources"]["OnDeployTask"]["Properties"]["Timeout"] = 900
    merged["Resources"]["QueueDeployTasks"]["Properties"]["VisibilityTimeout"] = 900
    assert "QueueDeployTasks: VisibilityTimeout does not exceed OnDeployTask's 900 s" in problems(
        merged
    )


def test_tables_with_user_data_can_be_restored_and_are_protected_by_a_parameter(merged):
    tables = {
        r["Properties"]["TableName"]: r
        for r in merged["Resources"].values()
        if r.get("Type") == "AWS::DynamoDB::Table"
    }
    for name in ("workspaces", "api_keys", "projects", "deployments", "logs", "usage"):
        table = tables[f"shipyard-{name}"]
        assert table["Properties"]["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True
        }
        assert table["DeletionPolicy"] == "Retain"
    for name in ("idempotency", "rate_limits", "build_slots"):
        table = tables[f"shipyard-{name}"]
        assert table["Properties"]["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": False
        }
        skipped = {s["id"]: s["comment"] for s in table["Metadata"]["checkov"]["skip"]}
        assert len(skipped["CKV_AWS_28"]) > 30
    for table in tables.values():
        assert table["Properties"]["DeletionProtectionEnabled"] == {
            "Fn::If": ["Protected", True, False]
        }
    assert merged["Resources"]["TableShipyardUsage"]["Properties"]["TimeToLiveSpecification"]
    merged["Resources"]["TableShipyardProjects"]["Properties"][
        "PointInTimeRecoverySpecification"
    ] = {"PointInTimeRecoveryEnabled": False}
    assert any("TableShipyardProjects: point-in-time" in p for p in problems(merged))


def test_no_role_writes_on_every_resource(merged):
    merged["Resources"]["SweepRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ].append({"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "*"})
    assert "SweepRole: writes on *: ['s3:PutObject']" in problems(merged)


def test_each_function_may_do_only_what_its_trigger_needs(merged):
    starts_builds = {
        f for f in declaration()["functions"] if "codebuild:StartBuild" in actions_of(merged, f)
    }
    assert starts_builds == {"OnBuildsMessage"}
    answers_tasks = {
        f for f in declaration()["functions"] if "states:SendTaskSuccess" in actions_of(merged, f)
    }
    assert answers_tasks == {"OnDeployTask"}
    deploys_apps = {
        f for f in declaration()["functions"] if "lambda:CreateFunction" in actions_of(merged, f)
    }
    assert deploys_apps == {"OnDeployTask"}
    pass_role = [s for s in role_of(merged, "OnDeployTask") if s["Action"] == "iam:PassRole"]
    assert pass_role[0]["Resource"] == {"Fn::GetAtt": ["AppRole", "Arn"]}
    assert "kms:Encrypt" not in actions_of(merged, "OnDeployTask")
    assert not any(a.startswith(("kms:", "s3:")) for a in actions_of(merged, "Sweep"))
    # Without ListBucket, HeadObject on an upload not there yet is a 403 instead of a 404.
    assert {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": {"Fn::GetAtt": ["BucketArtifacts", "Arn"]},
    } in role_of(merged, "APIHandler")
    # The env snapshots are read where builds and deploys need them, written only by the API.
    for function in declaration()["functions"]:
        for statement in role_of(merged, function):
            if statement["Action"] == "s3:PutObject":
                assert function == "APIHandler"


def tables_of(template_: dict, function: str) -> dict[str, set[str]]:
    """The tables a function's role may act on (by logical id), with the actions."""
    found: dict[str, set[str]] = {}
    for statement in role_of(template_, function):
        for logical in infra.verify.refers_to(statement["Resource"]):
            if logical.startswith("TableShipyard"):
                found.setdefault(logical, set()).update(_list(statement["Action"]))
    return found


def test_each_functions_role_acts_on_its_declared_tables_only(merged):
    # Given each function's declared tables, its role has their level's actions on them
    # (and their indexes), and no data action on any other table
    for function, declared in declaration()["functions"].items():
        granted = tables_of(merged, function)
        stream = declared.get("stream")
        expected = {iam.Names.table(t) for t in declared["tables"]}
        # (the stream reads and the health check's DescribeTable are not data actions)
        other = {*infra.verify.STREAM_ACTIONS, "dynamodb:DescribeTable"}
        data = {t for t, actions in granted.items() if actions - other}
        assert data == expected, function
        for table, level in declared["tables"].items():
            assert set(iam.TABLE_ACTIONS[level]) <= granted[iam.Names.table(table)]
        if stream:
            assert granted[iam.Names.table(stream)] >= set(infra.verify.STREAM_ACTIONS)
    # The webhook worker reaches three tables; the API, all of them
    assert set(tables_of(merged, "OnWebhookDelivery")) == {
        "TableShipyardEvents",
        "TableShipyardWebhooks",
        "TableShipyardWebhookDeliveries",
    }
    assert len(tables_of(merged, "APIHandler")) == len(declaration()["tables"])


def test_a_worker_given_a_table_it_does_not_declare_is_caught(merged):
    # When the webhook worker's role gets the API keys table
    role = merged["Resources"]["OnWebhookDeliveryRole"]["Properties"]["Policies"][0]
    role["PolicyDocument"]["Statement"].append(
        {
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
            "Resource": {"Fn::GetAtt": ["TableShipyardApiKeys", "Arn"]},
        }
    )
    # and the sweeper's role the key, which it declares no use of
    merged["Resources"]["SweepRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ].append(
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": {"Fn::GetAtt": ["KeyShipyard", "Arn"]},
        }
    )
    found = problems(merged)
    # Then both are caught
    assert (
        "OnWebhookDelivery: dynamodb:GetItem on TableShipyardApiKeys, beyond its declared tables"
        in found
    )
    assert (
        "OnWebhookDelivery: dynamodb:PutItem on TableShipyardApiKeys, beyond its declared tables"
        in found
    )
    assert "Sweep: its role names KeyShipyard, which it does not declare" in found


def test_a_write_on_a_table_declared_read_and_a_declared_table_not_granted_are_caught(
    merged, monkeypatch
):
    # Given the webhook worker declaring webhooks read-only and the events table not at all
    spec = declaration()
    tables = spec["functions"]["OnWebhookDelivery"]["tables"]
    tables["webhooks"] = "read"
    del tables["events"]
    tables["logs"] = "read"
    monkeypatch.setattr(infra.verify, "declaration", lambda: copy.deepcopy(spec))
    # When the template still gives what the code needs
    found = problems(merged)
    # Then the role exceeds the declaration, and lacks the read of logs
    assert (
        "OnWebhookDelivery: dynamodb:PutItem on TableShipyardWebhooks, beyond its declared tables"
        in found
    )
    assert (
        "OnWebhookDelivery: dynamodb:GetItem on TableShipyardEvents, beyond its declared tables"
        in found
    )
    assert any(p.startswith("OnWebhookDelivery: declares TableShipyardLogs read") for p in found)


def test_chalices_policy_is_replaced_in_every_functions_role(merged):
    for function in declaration()["functions"]:
        for statement in role_of(merged, function):
            assert not json.dumps(statement["Resource"]).startswith('"arn:'), function
    del merged["Resources"]["SweepRole"]["Properties"]["Policies"]
    merged["Resources"]["SweepRole"]["Properties"]["Policies"] = chalice_template()["Resources"][
        "SweepRole"
    ]["Properties"]["Policies"]
    assert "Sweep: chalice's policy.json is still in its role" in problems(merged)


def test_the_apps_role_has_nothing_on_shipyards_resources(merged):
    app_role = statements(merged["Resources"]["AppRole"])
    assert {a for s in app_role for a in s["Action"]} == {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    merged["Resources"]["AppRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ].append(
        {
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": {"Fn::GetAtt": ["TableShipyardApiKeys", "Arn"]},
        }
    )
    found = problems(merged)
    assert "AppRole: may call dynamodb:GetItem" in found
    assert "AppRole: may act on Shipyard's {'TableShipyardApiKeys'}" in found


def test_codebuild_reads_only_sources_and_pushes_only_to_the_apps_repository(merged):
    # The uploads and the clones of git sources (the clone build writes those) are all a
    # build reads; it writes its artifact and its clone, nothing else of the bucket
    codebuild = statements(merged["Resources"]["CodeBuildRole"])
    reads = [s for s in codebuild if "s3:GetObject" in s["Action"]]
    sources = [
        {"Fn::Sub": "${BucketArtifacts.Arn}/uploads/*"},
        {"Fn::Sub": "${BucketArtifacts.Arn}/clones/*"},
    ]
    assert [s["Resource"] for s in reads] == [sources]
    writes = [s for s in codebuild if "s3:PutObject" in _list(s["Action"])]
    assert [s["Resource"] for s in writes] == [
        [
            {"Fn::Sub": "${BucketArtifacts.Arn}/artifacts/*"},
            {"Fn::Sub": "${BucketArtifacts.Arn}/clones/*"},
        ]
    ]
    pushes = [s for s in codebuild if "ecr:PutImage" in s["Action"]]
    assert [s["Resource"] for s in pushes] == [{"Fn::GetAtt": ["AppImages", "Arn"]}]
    reads[0]["Resource"] = [sources[0], {"Fn::Sub": "${BucketArtifacts.Arn}/*"}]
    writes[0]["Resource"] = [{"Fn::Sub": "${BucketArtifacts.Arn}/env/*"}]
    pushes[0]["Resource"] = "*"
    found = problems(merged)
    assert any(p.startswith("CodeBuildRole: s3:GetObject beyond the uploads/") for p in found)
    assert any(p.startswith("CodeBuildRole: s3:PutObject beyond artifacts/") for p in found)
    assert "CodeBuildRole: ecr:PutImage beyond the apps' repository" in found


def test_codebuild_reads_secret_values_only_from_the_builds_parameters(merged):
    # CodeBuild resolves PARAMETER_STORE variables with its own role: that role may read the
    # builds' SecureStrings, and nothing else of Parameter Store
    codebuild = statements(merged["Resources"]["CodeBuildRole"])
    ssm = [s for s in codebuild if any(a.startswith("ssm:") for a in _list(s["Action"]))]
    assert [(s["Action"], s["Resource"]) for s in ssm] == [
        (
            "ssm:GetParameters",
            {
                "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
                ":parameter/shipyard/builds/*"
            },
        )
    ]
    # the workers that start builds and hear their end write and delete them, there only
    for function in ("OnBuildsMessage", "OnCodebuildStateChange"):
        writes = [s for s in role_of(merged, function) if "ssm:PutParameter" in s["Action"]]
        assert [s["Resource"] for s in writes] == [ssm[0]["Resource"]], function
    assert not any("ssm:" in json.dumps(s) for s in role_of(merged, "APIHandler"))
    ssm[0]["Resource"] = "*"
    assert "CodeBuildRole: ssm:GetParameters beyond the builds' secrets" in problems(merged)


def _list(actions):
    return actions if isinstance(actions, list) else [actions]


def test_every_log_group_keeps_logs_for_the_retention_parameter(merged):
    resources = merged["Resources"]
    assert resources  # the parameter defaults to 30 days
    assert template()["Parameters"]["LogRetentionDays"]["Default"] == 30
    groups = [r for r in resources.values() if r.get("Type") == "AWS::Logs::LogGroup"]
    # One per function, the state machine's, CodeBuild's and the API's access log.
    assert len(groups) == len(declaration()["functions"]) + 3
    resources["SweepLogs"]["Properties"]["RetentionInDays"] = 3653
    assert "SweepLogs: retention is not the LogRetentionDays parameter" in problems(merged)
    del resources["OnDeployTask"]["Properties"]["LoggingConfig"]
    assert "OnDeployTask: no log group of the stack" in problems(merged)


def test_the_apps_log_groups_keep_logs_for_the_retention_parameter(merged):
    # The apps' functions are made at runtime: the runtime gets the parameter
    variables = merged["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["SHIPYARD_APP_LOG_RETENTION_DAYS"] == {"Ref": "LogRetentionDays"}
    # and only the function that deploys apps may make their log groups and set retention,
    # on the apps' log groups only
    prefix = {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
        "/aws/lambda/shipyard-app-*"
    }
    for function in declaration()["functions"]:
        retention = [
            s for s in role_of(merged, function) if "logs:PutRetentionPolicy" in s["Action"]
        ]
        if function == "OnDeployTask":
            assert [(s["Action"], s["Resource"]) for s in retention] == [
                (["logs:CreateLogGroup", "logs:PutRetentionPolicy"], prefix)
            ]
        else:
            assert retention == [], function


def test_every_function_has_its_timeout_and_memory_and_builds_reserved_concurrency(merged):
    for function, declared in declaration()["functions"].items():
        properties = merged["Resources"][function]["Properties"]
        assert properties["Timeout"] == declared["timeout_s"]
        assert properties["MemorySize"] == declared["memory_mb"]
    builds = merged["Resources"]["OnBuildsMessage"]["Properties"]
    reserved = builds["ReservedConcurrentExecutions"]
    assert reserved == {
        "Fn::If": ["ReserveBuilds", {"Ref": "BuildsConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    # Its queue's pollers stay within it, so no message is throttled into the DLQ.
    source = builds["Events"]["OnBuildsMessageSqsEventSource"]
    assert source["Type"] == "SQS"
    assert source["Properties"]["ScalingConfig"] == {"MaximumConcurrency": reserved}
    del source["Properties"]["ScalingConfig"]
    assert "OnBuildsMessage: its queue's pollers may exceed its reserved concurrency" in problems(
        merged
    )
    del builds["ReservedConcurrentExecutions"]
    assert "OnBuildsMessage: no reserved concurrency" in problems(merged)


def test_the_declared_functions_are_the_apps_handlers():
    from app import app

    handlers = {to_cfn_resource_name(source.name) for source in app.event_sources}
    assert set(declaration()["functions"]) == handlers | {"APIHandler"}


def test_every_checkov_skip_says_why():
    for name, resource in template()["Resources"].items():
        skips = resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
        ids = [s["id"] for s in skips]
        assert len(ids) == len(set(ids)), name
        for skip in skips:
            assert skip["id"].startswith("CKV_AWS_"), name
            assert len(skip["comment"]) >= 30, (name, skip)


def test_an_async_function_that_fails_lands_in_the_failed_events_queue(merged):
    for function, declared in declaration()["functions"].items():
        dlq = merged["Resources"][function]["Properties"].get("DeadLetterQueue")
        if declared["trigger"] in ("event", "schedule"):
            assert dlq == {"Type": "SQS", "TargetArn": {"Fn::GetAtt": ["FailedEvents", "Arn"]}}
            assert any(
                s["Action"] == "sqs:SendMessage" and s["Resource"] == dlq["TargetArn"]
                for s in role_of(merged, function)
            )
        else:
            assert dlq is None, function


def test_each_stream_handler_reads_its_tables_stream(merged):
    # Given the handlers app.py declares on the tables' streams
    from app import app

    streams = {
        to_cfn_resource_name(s.name): s.stream_arn.split(":table/")[1].split("/")[0]
        for s in app.event_sources
        if isinstance(s, DynamoDBEventConfig)
    }
    assert set(streams.values()) == {"projects", "deployments", "api_keys"}
    for function, table in streams.items():
        # Then the function declares that table, the table has a stream with both images,
        # and the packaged event source reads that table's StreamArn, not app.py's name
        assert declaration()["functions"][function]["stream"] == table
        logical = "TableShipyard" + "".join(p.capitalize() for p in table.split("_"))
        spec = merged["Resources"][logical]["Properties"]["StreamSpecification"]
        assert spec == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
        source = merged["Resources"][function]["Properties"]["Events"][
            function + "DynamodbEventSource"
        ]
        assert source["Properties"]["Stream"] == {"Fn::GetAtt": [logical, "StreamArn"]}
        assert {"Fn::GetAtt": [logical, "StreamArn"]} in [
            s["Resource"] for s in role_of(merged, function)
        ]
    # And a handler pointed at another table's stream is caught
    merged["Resources"]["OnProjectsChange"]["Properties"]["Events"][
        "OnProjectsChangeDynamodbEventSource"
    ]["Properties"]["Stream"] = {"Fn::GetAtt": ["TableShipyardApiKeys", "StreamArn"]}
    assert any("OnProjectsChange" in p and "stream" in p for p in problems(merged))


def test_each_schedule_and_rule_is_wired_to_its_own_function(merged):
    # The sweeper and the webhook retries each run on their schedule, the CodeBuild handler
    # on its rule
    resources = merged["Resources"]
    for function, kind in (
        ("Sweep", "Schedule"),
        ("RetryWebhooks", "Schedule"),
        ("OnCodebuildStateChange", "CloudWatchEvent"),
    ):
        events = resources[function]["Properties"]["Events"].values()
        assert [e["Type"] for e in events] == [kind], function
    # A schedule lost by one of them is caught, though the other keeps its own
    del resources["RetryWebhooks"]["Properties"]["Events"]
    assert "RetryWebhooks: no schedule invokes it" in problems(merged)
