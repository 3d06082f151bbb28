"""What the packaged template must hold, checked on the template itself:

    python -m infra.verify [infra/build/out/sam.json]     # `make infra-lint` runs it

Each check reads the merged template (chalice's functions, roles and event sources with
infra/cloudformation.py's resources and overrides), so a merge that did not take (a role
chalice renamed, a function that lost its log group) is caught, not only a wrong render.
`problems` returns one line per broken rule; tests/unit/test_template.py runs it too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from infra.cloudformation import logical_id
from infra.iam import RESOURCELESS_ACTIONS, TABLE_ACTIONS, Names
from infra.provision import INFRA, declaration

PACKAGED = INFRA / "build" / "out" / "sam.json"
SHIPYARD_SERVICES = ("dynamodb", "s3", "sqs", "kms", "states", "codebuild", "ecr", "iam", "ssm")
# Actions that only read; anything else is a write.
READ_PREFIXES = ("Get", "List", "Describe", "BatchGet", "Query", "Scan", "Head")
# What Lambda's event source mapping reads of a table's stream, with the function's role.
STREAM_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")


def _of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r.get("Type") == kind}


def _actions(statement: dict) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _resources(statement: dict) -> list[Any]:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def is_write(action: str) -> bool:
    return not action.split(":", 1)[1].startswith(READ_PREFIXES)


def statements(role: dict) -> list[dict]:
    found = []
    for policy in role["Properties"].get("Policies", []):
        found += policy["PolicyDocument"]["Statement"]
    return found


def refers_to(value: Any) -> set[str]:
    """The logical ids a value names through Ref, Fn::GetAtt or Fn::Sub."""
    if isinstance(value, dict):
        if "Ref" in value:
            return {value["Ref"]}
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            text = value["Fn::Sub"]
            return {
                part.split("}")[0].split(".")[0]
                for part in text.split("${")[1:]
                if not part.startswith("AWS::")
            }
        return set().union(*(refers_to(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(refers_to(v) for v in value)) if value else set()
    return set()


def _function_role(function: dict) -> str:
    return function["Properties"]["Role"]["Fn::GetAtt"][0]


def declared_resources(function: str, declared: dict, spec: dict) -> set[str]:
    """The logical ids other than tables that a function's declaration lets its role name:
    its log group, its queues, and what each of its permission sets acts on."""
    allowed = {function + "Logs"}
    if declared["trigger"] in ("event", "schedule", "stream"):
        allowed.add("FailedEvents")
    allowed |= {Names.queue(q) for q, f in spec.get("queue_consumers", {}).items() if f == function}
    buckets = {logical_id("Bucket", b) for b in spec["buckets"]}
    by_kind = {
        "objects": buckets,
        "health": buckets,
        "key": {logical_id("Key", k) for k in spec["kms_keys"]},
        "workflow": {logical_id("StateMachine", m) for m in spec.get("state_machines", {})},
        "apps": {"AppRole", "AppImages"} if "apps:deploy" in declared["access"] else set(),
    }
    for name in declared["access"]:
        kind, _, rest = name.partition(":")
        allowed |= by_kind.get(kind, set())
        if kind == "queue":
            allowed.add(Names.queue(rest.split(":")[0]))
        if name in ("build:start", "build:stop"):
            allowed |= {logical_id("CodeBuild", p) for p in spec.get("codebuild_projects", {})}
    return allowed


def _table_problems(name: str, declared: dict, role: dict, resources: dict) -> list[str]:
    """A function's role acts on the tables it declares, at their level, and on no other."""
    found = []
    tables = {Names.table(t): level for t, level in declared.get("tables", {}).items()}
    stream = Names.table(declared["stream"]) if declared["trigger"] == "stream" else None
    granted: dict[str, set[str]] = {}
    for statement in statements(role):
        for logical in sorted(refers_to(statement["Resource"])):
            if resources.get(logical, {}).get("Type") != "AWS::DynamoDB::Table":
                continue
            for action in _actions(statement):
                granted.setdefault(logical, set()).add(action)
                if action in STREAM_ACTIONS:
                    allowed = logical == stream
                elif action == "dynamodb:DescribeTable":
                    allowed = "health" in declared["access"] and logical == Names.table("projects")
                else:
                    level = tables.get(logical)
                    allowed = level == "write" or (level == "read" and not is_write(action))
                if not allowed:
                    found.append(f"{name}: {action} on {logical}, beyond its declared tables")
    for logical, level in tables.items():
        missing = set(TABLE_ACTIONS[level]) - granted.get(logical, set())
        if missing:
            found.append(f"{name}: declares {logical} {level}, its role lacks {sorted(missing)}")
    return found


def problems(template: dict) -> list[str]:
    spec = declaration()
    found: list[str] = []
    resources = template["Resources"]
    functions = _of_type(template, "AWS::Serverless::Function")
    queues = _of_type(template, "AWS::SQS::Queue")
    roles = _of_type(template, "AWS::IAM::Role")
    log_groups = _of_type(template, "AWS::Logs::LogGroup")
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")

    # 8. The state machine AWS runs is the one moto runs.
    for machine, file in spec.get("state_machines", {}).items():
        logical = "StateMachine" + machine.capitalize()
        definition = resources[logical]["Properties"]["DefinitionString"]
        if definition != (INFRA / file).read_text():
            found.append(f"{logical}: DefinitionString is not byte for byte infra/{file}")
        logging = resources[logical]["Properties"].get("LoggingConfiguration", {})
        if not logging.get("Destinations"):
            found.append(f"{logical}: no log group")

    # 5. Log retention on every log group, a log group for every function.
    for name, group in log_groups.items():
        if group["Properties"].get("RetentionInDays") != {"Ref": "LogRetentionDays"}:
            found.append(f"{name}: retention is not the LogRetentionDays parameter")
    if set(functions) != set(spec["functions"]):
        found.append(f"functions {sorted(functions)} are not those declared")
    for name, function in functions.items():
        properties = function["Properties"]
        declared = spec["functions"].get(name, {})
        if properties.get("Timeout") != declared.get("timeout_s"):
            found.append(f"{name}: Timeout is not the declared {declared.get('timeout_s')}")
        if properties.get("MemorySize") != declared.get("memory_mb"):
            found.append(f"{name}: MemorySize is not the declared {declared.get('memory_mb')}")
        group = properties.get("LoggingConfig", {}).get("LogGroup", {}).get("Ref")
        if group not in log_groups:
            found.append(f"{name}: no log group of the stack")
        if declared.get("reserved_concurrency"):
            reserved = properties.get("ReservedConcurrentExecutions")
            if not reserved:
                found.append(f"{name}: no reserved concurrency")
            for event in properties.get("Events", {}).values():
                scaling = event["Properties"].get("ScalingConfig", {})
                if event["Type"] == "SQS" and scaling.get("MaximumConcurrency") != reserved:
                    found.append(f"{name}: its queue's pollers may exceed its reserved concurrency")

    # 5. Wiring: each consumer reads its queue, the CodeBuild rule and the sweeper schedule.
    for queue, function in spec.get("queue_consumers", {}).items():
        events = functions.get(function, {}).get("Properties", {}).get("Events", {})
        sources = [e for e in events.values() if e["Type"] == "SQS"]
        if not any(f":shipyard-{queue}" in json.dumps(e["Properties"]["Queue"]) for e in sources):
            found.append(f"{function}: not subscribed to the {queue} queue")
    # Each stream handler reads the stream of the table it declares.
    for function, declared in spec["functions"].items():
        if declared["trigger"] != "stream":
            continue
        table = Names.table(declared["stream"])
        events = functions.get(function, {}).get("Properties", {}).get("Events", {})
        streams = [
            e["Properties"].get("Stream") for e in events.values() if e["Type"] == "DynamoDB"
        ]
        if streams != [{"Fn::GetAtt": [table, "StreamArn"]}]:
            found.append(f"{function}: does not read the stream of {table}")
        if "StreamSpecification" not in resources.get(table, {}).get("Properties", {}):
            found.append(f"{table}: no stream, yet {function} reads it")
    kinds = {
        json.dumps(e.get("Properties", {}).get("Pattern", {}).get("source"))
        for f in functions.values()
        for e in f["Properties"].get("Events", {}).values()
        if e["Type"] == "CloudWatchEvent"
    }
    if '["aws.codebuild"]' not in kinds:
        found.append("no function receives the CodeBuild state-change events")
    # Each scheduled function (the sweeper, the webhook retries) has its schedule, and each
    # event-triggered one its rule: one function wired is not the other.
    wiring = {"schedule": ("Schedule", "schedule"), "event": ("CloudWatchEvent", "rule")}
    for function, declared in spec["functions"].items():
        if declared["trigger"] not in wiring:
            continue
        kind, what = wiring[declared["trigger"]]
        events = functions.get(function, {}).get("Properties", {}).get("Events", {})
        if not any(e["Type"] == kind for e in events.values()):
            found.append(f"{function}: no {what} invokes it")

    # 2. Every queue has a dead-letter queue with an alarm; encrypted; visibility > timeout.
    dead_letter = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    }
    for function in functions.values():
        target = function["Properties"].get("DeadLetterQueue", {}).get("TargetArn")
        if target:
            dead_letter.add(target["Fn::GetAtt"][0])
    alarmed = {
        d["Value"]["Fn::GetAtt"][0]
        for a in alarms.values()
        for d in a["Properties"]["Dimensions"]
        if d["Name"] == "QueueName"
    }
    consumers = {f"shipyard-{q}": f for q, f in spec.get("queue_consumers", {}).items()}
    for name, queue in queues.items():
        properties = queue["Properties"]
        if not (properties.get("SqsManagedSseEnabled") or properties.get("KmsMasterKeyId")):
            found.append(f"{name}: not encrypted")
        if name in dead_letter:
            if name not in alarmed:
                found.append(f"{name}: a dead-letter queue without an alarm on its depth")
            continue
        redrive = properties.get("RedrivePolicy", {})
        if not redrive.get("maxReceiveCount"):
            found.append(f"{name}: no dead-letter queue (RedrivePolicy with maxReceiveCount)")
        consumer = consumers.get(properties.get("QueueName"))
        if consumer is None:
            found.append(f"{name}: no consumer declared in queue_consumers")
            continue
        timeout = functions.get(consumer, {}).get("Properties", {}).get("Timeout", 0)
        if properties.get("VisibilityTimeout", 30) <= timeout:
            found.append(f"{name}: VisibilityTimeout does not exceed {consumer}'s {timeout} s")

    # 3. Tables: PITR unless declared without backup, TTL where declared, deletion protection.
    for name, table in _of_type(template, "AWS::DynamoDB::Table").items():
        properties = table["Properties"]
        declared = spec["tables"][properties["TableName"].removeprefix("shipyard-")]
        pitr = properties.get("PointInTimeRecoverySpecification", {})
        if pitr.get("PointInTimeRecoveryEnabled") is not ("no_backup" not in declared):
            found.append(f"{name}: point-in-time recovery does not match its declaration")
        if (
            "ttl" in declared
            and properties.get("TimeToLiveSpecification", {}).get("AttributeName")
            != declared["ttl"]
        ):
            found.append(f"{name}: no TTL on {declared['ttl']}")
        if properties.get("DeletionProtectionEnabled") != {"Fn::If": ["Protected", True, False]}:
            found.append(f"{name}: deletion protection is not the DeletionProtection parameter")

    # 4. Least privilege: no write on "*"; the apps' role has nothing of Shipyard's;
    # CodeBuild reads only the uploads and the clones of git sources, writes only the
    # artifacts and those clones, and pushes only to the apps' repository.
    for name, role in roles.items():
        for statement in statements(role):
            if "*" in _resources(statement):
                writes = [a for a in _actions(statement) if is_write(a)]
                if set(writes) - RESOURCELESS_ACTIONS:
                    found.append(
                        f"{name}: writes on *: {sorted(set(writes) - RESOURCELESS_ACTIONS)}"
                    )
            for action in _actions(statement):
                if "*" in action:
                    found.append(f"{name}: wildcard action {action}")
    shipyard = {
        k
        for k, r in resources.items()
        if r.get("Type", "").split("::")[1:2]
        and r["Type"].split("::")[1] in ("DynamoDB", "S3", "SQS", "KMS", "StepFunctions", "ECR")
    }
    app_role = roles.get("AppRole")
    if app_role is None:
        found.append("no AppRole")
    else:
        for statement in statements(app_role):
            if refers_to(statement["Resource"]) & shipyard:
                found.append(f"AppRole: may act on Shipyard's {refers_to(statement['Resource'])}")
            for action in _actions(statement):
                if action.split(":")[0] in SHIPYARD_SERVICES:
                    found.append(f"AppRole: may call {action}")
        if app_role["Properties"].get("ManagedPolicyArns"):
            found.append("AppRole: managed policies (they act on *)")
    codebuild = roles.get("CodeBuildRole")
    if codebuild is None:
        found.append("no CodeBuildRole")
    else:
        for statement in statements(codebuild):
            for action in _actions(statement):
                service, verb = action.split(":")
                text = json.dumps(statement["Resource"])
                objects = [json.dumps(r) for r in _resources(statement)]
                if action in ("s3:GetObject", "s3:GetObjectVersion") and not all(
                    o.endswith(('/uploads/*"}', '/clones/*"}')) for o in objects
                ):
                    found.append(
                        f"CodeBuildRole: {action} beyond the uploads/ and clones/ prefixes: {text}"
                    )
                if action == "s3:PutObject" and not all(
                    o.endswith(('/artifacts/*"}', '/clones/*"}')) for o in objects
                ):
                    found.append(
                        f"CodeBuildRole: s3:PutObject beyond artifacts/ and clones/: {text}"
                    )
                repository = statement["Resource"] == {"Fn::GetAtt": ["AppImages", "Arn"]}
                if service == "ecr" and verb != "GetAuthorizationToken" and not repository:
                    found.append(f"CodeBuildRole: {action} beyond the apps' repository")
                if service in ("dynamodb", "sqs", "kms", "states", "lambda", "iam"):
                    found.append(f"CodeBuildRole: may call {action}")
                if service == "ssm" and (
                    verb != "GetParameters" or "parameter/shipyard/builds/*" not in text
                ):
                    found.append(f"CodeBuildRole: {action} beyond the builds' secrets")
    for name, function in functions.items():
        role = roles.get(_function_role(function))
        if role is None:
            found.append(f"{name}: its role is not in the template")
            continue
        # The rendered statements name the stack's resources; a literal ARN is policy.json's.
        for statement in statements(role):
            if any(isinstance(r, str) and r.startswith("arn:") for r in _resources(statement)):
                found.append(f"{name}: chalice's policy.json is still in its role")
        # Each function's role names only what its declaration lists.
        declared = spec["functions"].get(name)
        if declared is None:
            continue
        found += _table_problems(name, declared, role, resources)
        others = declared_resources(name, declared, spec)
        for statement in statements(role):
            for logical in sorted(refers_to(statement["Resource"]) - others):
                if resources.get(logical, {}).get("Type") != "AWS::DynamoDB::Table":
                    found.append(f"{name}: its role names {logical}, which it does not declare")
    return found


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGED
    found = problems(json.loads(path.read_text()))
    for line in found:
        print(line)
    print(f"{path}: {len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
