"""The resource declaration renders to CloudFormation with every table and the error
envelope for API Gateway's own responses."""

import json
import re
import zipfile
from pathlib import Path

from infra.bundle import LAYER_SITE, build_and_test_packages
from infra.cloudformation import template
from infra.iam import RESOURCELESS_ACTIONS
from infra.provision import declaration, table_definitions


def test_every_declared_table_is_rendered_once():
    rendered = template()["Resources"]
    tables = [
        r["Properties"]["TableName"]
        for r in rendered.values()
        if r.get("Type") == "AWS::DynamoDB::Table"
    ]
    assert sorted(tables) == sorted(f"shipyard-{name}" for name in declaration()["tables"])


def test_table_definitions_declare_every_key_attribute():
    for definition in table_definitions("shipyard"):
        declared = {a["AttributeName"] for a in definition["AttributeDefinitions"]}
        used = {k["AttributeName"] for k in definition["KeySchema"]}
        for index in definition.get("GlobalSecondaryIndexes", []):
            used |= {k["AttributeName"] for k in index["KeySchema"]}
        assert declared == used, definition["TableName"]


def test_unknown_routes_on_api_gateway_answer_the_404_envelope():
    responses = [
        r["Properties"]
        for r in template()["Resources"].values()
        if r.get("Type") == "AWS::ApiGateway::GatewayResponse"
    ]
    missing = next(r for r in responses if r["ResponseType"] == "MISSING_AUTHENTICATION_TOKEN")
    assert missing["StatusCode"] == "404"
    body = json.loads(missing["ResponseTemplates"]["application/json"])
    assert body["error"]["code"] == "not_found"


def test_the_deploy_workflow_is_rendered_with_a_role_that_can_only_send_its_tasks():
    rendered = template()["Resources"]
    machine = rendered["StateMachineDeploy"]["Properties"]
    definition = json.loads(machine["DefinitionString"])
    assert machine["StateMachineName"] == "shipyard-deploy"
    assert definition["StartAt"] == "Deploy"
    role = rendered[machine["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert [s for s in statements if s["Resource"] != "*"] == [
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": ["QueueDeployTasks", "Arn"]},
        }
    ]
    # Log delivery and tracing, which AWS defines on no resource.
    for statement in statements:
        if statement["Resource"] == "*":
            assert set(statement["Action"]) <= RESOURCELESS_ACTIONS
    assert "QueueDeployTasks" in rendered


def test_every_task_of_the_deploy_workflow_is_bounded_and_caught():
    definition = json.loads(
        template()["Resources"]["StateMachineDeploy"]["Properties"]["DefinitionString"]
    )
    tasks = {name: s for name, s in definition["States"].items() if s["Type"] == "Task"}
    assert set(tasks) == {"Deploy", "HealthCheck", "Promote", "MarkFailed"}
    for name, state in tasks.items():
        assert state["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken", name
        assert state["TimeoutSecondsPath"] == "$.task_timeout_s", name
        assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"], name
        for retry in state.get("Retry", []):
            assert retry["MaxAttempts"] <= 300, name


def test_each_queue_consumer_named_for_cloudformation_is_the_apps_sqs_handler():
    from chalice.app import SQSEventConfig

    from app import app

    handlers = {
        config.queue: "".join(part.capitalize() for part in config.name.split("_"))
        for config in app.event_sources
        if isinstance(config, SQSEventConfig)
    }
    declared = declaration()["queue_consumers"]
    assert handlers == {f"shipyard-{queue}": name for queue, name in declared.items()}
    rendered = template()["Resources"]
    for queue, function in declared.items():
        assert rendered[function]["DependsOn"] == ["Queue" + queue.title().replace("-", "")]


def test_idempotency_records_and_period_counters_expire_on_aws():
    rendered = {
        r["Properties"]["TableName"]: r["Properties"]
        for r in template()["Resources"].values()
        if r.get("Type") == "AWS::DynamoDB::Table"
    }
    for table in ("shipyard-idempotency", "shipyard-usage"):
        assert rendered[table]["TimeToLiveSpecification"] == {
            "AttributeName": "expires_at",
            "Enabled": True,
        }
    assert "TimeToLiveSpecification" not in rendered["shipyard-projects"]


ROOT = Path(__file__).resolve().parents[2]


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[\[=<>~! ]", line)[0].lower().replace("_", "-"))
    return names


def test_what_ships_to_lambda_is_not_the_build_or_the_tests_tools():
    # requirements.txt is the layer: chalice vendors its runtime into the app, and boto3
    # is the Lambda runtime's (docs/aws.md says why); both are dev requirements
    shipped = requirement_names(ROOT / "requirements.txt")
    dev = requirement_names(ROOT / "requirements-dev.txt")
    assert {"chalice", "boto3", "botocore"} & shipped == set()
    assert {"chalice", "boto3", "pytest", "moto", "cfn-lint"} <= dev
    assert shipped  # the runtime's own needs are still there
    assert {"pydantic", "cryptography"} <= shipped


def test_a_layer_holding_a_build_or_test_package_is_refused(tmp_path):
    # infra/bundle.py (make infra-lint) reads the layer chalice built
    layer = tmp_path / "layer-deployment.zip"
    with zipfile.ZipFile(layer, "w") as archive:
        archive.writestr(LAYER_SITE + "pydantic/__init__.py", "")
        archive.writestr(LAYER_SITE + "typing_extensions.py", "")
    assert build_and_test_packages(layer) == []
    with zipfile.ZipFile(layer, "a") as archive:
        archive.writestr(LAYER_SITE + "chalice/__init__.py", "")
        archive.writestr(LAYER_SITE + "yaml/__init__.py", "")
        archive.writestr(LAYER_SITE + "botocore/__init__.py", "")
    assert build_and_test_packages(layer) == ["botocore", "chalice", "yaml"]


def test_the_docs_count_the_alarms_that_bill_at_rest():
    # README.md and docs/aws.md price the alarms of the template: one per dead-letter queue
    alarms = [
        r for r in template()["Resources"].values() if r.get("Type") == "AWS::CloudWatch::Alarm"
    ]
    words = {3: "three", 4: "four", 5: "five", 6: "six"}
    count = f"{words[len(alarms)]} alarms (${len(alarms) / 10:.2f})"
    assert count in (ROOT / "README.md").read_text()
    assert (
        f"{words[len(alarms)]} CloudWatch alarms (${len(alarms) / 10:.2f}/month"
        in (ROOT / "docs" / "aws.md").read_text()
    )
