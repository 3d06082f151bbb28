"""The resource declaration renders to CloudFormation with every table and the error
envelope for API Gateway's own responses."""

import json

from infra.cloudformation import template
from infra.provision import declaration, table_definitions


def test_every_declared_table_is_rendered_once():
    rendered = template()["Resources"]
    tables = [
        r["Properties"]["TableName"] for r in rendered.values() if r["Type"].endswith("Table")
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
        if r["Type"] == "AWS::ApiGateway::GatewayResponse"
    ]
    missing = next(r for r in responses if r["ResponseType"] == "MISSING_AUTHENTICATION_TOKEN")
    assert missing["StatusCode"] == "404"
    body = json.loads(missing["ResponseTemplates"]["application/json"])
    assert body["error"]["code"] == "not_found"


def test_idempotency_records_and_period_counters_expire_on_aws():
    rendered = {
        r["Properties"]["TableName"]: r["Properties"]
        for r in template()["Resources"].values()
        if r["Type"] == "AWS::DynamoDB::Table"
    }
    for table in ("shipyard-idempotency", "shipyard-usage"):
        assert rendered[table]["TimeToLiveSpecification"] == {
            "AttributeName": "expires_at",
            "Enabled": True,
        }
    assert "TimeToLiveSpecification" not in rendered["shipyard-projects"]
