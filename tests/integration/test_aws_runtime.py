"""LambdaRuntime on moto, tested by its calls: the functions, versions, aliases, permissions and
URL configs moto records, and (where moto keeps one URL config per function whatever the
Qualifier) the parameters of the calls themselves. Images are real ECR images in moto, which
Lambda checks (MOTO_LAMBDA_STUB_ECR=false)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.aws.clients import client
from chalicelib.core.settings import get_settings
from chalicelib.pipeline import engines
from chalicelib.ports import AppSpec, DeployFailed
from chalicelib.runtimes.aws_lambda import LIVE_ALIAS, LambdaRuntime, http_status


@dataclass
class Plan:
    runtime: str = "python"
    start_command: str | None = "python app.py"
    output_directory: str | None = None
    port: int | None = None


TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


class Calls:
    """The Lambda and CloudWatch Logs API calls made, in order, with their parameters, as
    botocore builds them."""

    def __init__(self) -> None:
        self.made: list[tuple[str, dict]] = []

    def record(self, params, model, **kwargs) -> None:
        self.made.append((model.name, dict(params)))

    def of(self, operation: str) -> list[dict]:
        return [params for name, params in self.made if name == operation]


@pytest.fixture
def lambda_world(aws, monkeypatch):
    monkeypatch.setenv("MOTO_LAMBDA_STUB_ECR", "false")
    role = client("iam").create_role(
        RoleName="shipyard-app-runtime", AssumeRolePolicyDocument=json.dumps(TRUST)
    )["Role"]["Arn"]
    repository = client("ecr").create_repository(repositoryName="shipyard-apps")["repository"]
    calls = Calls()
    client("lambda").meta.events.register("before-parameter-build.lambda", calls.record)
    client("logs").meta.events.register("before-parameter-build.logs", calls.record)
    return role, repository["repositoryUri"], calls


def push_image(repository_uri: str, tag: str) -> str:
    """Put an image manifest into moto's ECR and return the image URI."""
    config = hashlib.sha256(tag.encode()).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1469,
            "digest": f"sha256:{config}",
        },
        "layers": [],
    }
    client("ecr").put_image(
        repositoryName="shipyard-apps", imageManifest=json.dumps(manifest), imageTag=tag
    )
    return f"{repository_uri}:{tag}"


def env_of(function: str, qualifier: str) -> dict:
    config = client("lambda").get_function_configuration(FunctionName=function, Qualifier=qualifier)
    return config["Environment"]["Variables"]


def versions(function: str) -> dict[str, str]:
    listed = client("lambda").list_versions_by_function(FunctionName=function)["Versions"]
    return {v["Version"]: v.get("Description", "") for v in listed if v["Version"] != "$LATEST"}


def alias_version(function: str, alias: str) -> str | None:
    aliases = client("lambda").list_aliases(FunctionName=function)["Aliases"]
    return next((a["FunctionVersion"] for a in aliases if a["Name"] == alias), None)


def test_deploy_publishes_a_version_with_its_alias_and_public_url(lambda_world):
    role, repository, calls = lambda_world
    image = push_image(repository, "dep_1")
    runtime = LambdaRuntime(role, poll_s=0)

    app = runtime.deploy(
        "dep_1", "prj_a", image, Plan(), {"APP_VERSION": "v1"}, health_check_path="/health"
    )

    # The function runs the image, as the project's role
    function = client("lambda").get_function(FunctionName=app.function_name)
    assert app.function_name == "shipyard-app-prj_a"
    assert function["Code"]["ImageUri"] == image
    assert function["Configuration"]["PackageType"] == "Image"
    assert function["Configuration"]["Role"] == role
    assert function["Tags"] == {"shipyard:project": "prj_a"}
    # One immutable version for the deployment, with its env and the adapter's settings
    assert versions(app.function_name) == {"1": "dep_1"}
    assert app.version == "1"
    assert env_of(app.function_name, "1") == {
        "APP_VERSION": "v1",
        "PORT": "8080",
        "AWS_LWA_PORT": "8080",
        "AWS_LWA_READINESS_CHECK_PATH": "/health",
        "SHIPYARD_DEPLOYMENT_ID": "dep_1",
    }
    # Published from the code just put (the image's digest), so a concurrent change can't slip in
    (publish,) = calls.of("PublishVersion")
    assert publish["CodeSha256"] == function["Configuration"]["CodeSha256"]
    (pushed,) = client("ecr").describe_images(
        repositoryName="shipyard-apps", imageIds=[{"imageTag": "dep_1"}]
    )["imageDetails"]
    assert publish["CodeSha256"] == pushed["imageDigest"].removeprefix("sha256:")
    # Its alias and its public URL
    assert alias_version(app.function_name, "dep_1") == "1"
    url_config = client("lambda").get_function_url_config(
        FunctionName=app.function_name, Qualifier="dep_1"
    )
    assert url_config["FunctionUrl"] == app.url
    assert url_config["AuthType"] == "NONE"
    assert [c["Qualifier"] for c in calls.of("CreateFunctionUrlConfig")] == ["dep_1"]
    policy = json.loads(
        client("lambda").get_policy(FunctionName=app.function_name, Qualifier="dep_1")["Policy"]
    )
    actions = {s["Action"] for s in policy["Statement"]}
    assert actions == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    assert all(s["Resource"].endswith(":dep_1") for s in policy["Statement"])
    grants = calls.of("AddPermission")
    assert {g["Qualifier"] for g in grants} == {"dep_1"}
    assert {g["Principal"] for g in grants} == {"*"}
    assert any(g.get("FunctionUrlAuthType") == "NONE" for g in grants)
    assert any(g.get("InvokedViaFunctionUrl") is True for g in grants)


def test_promote_switches_live_and_a_rollback_switches_it_back(lambda_world):
    role, repository, calls = lambda_world
    runtime = LambdaRuntime(role, poll_s=0)
    first = runtime.deploy("dep_1", "prj_a", push_image(repository, "v1"), Plan(), {"V": "1"})
    runtime.promote("prj_a", "dep_1")

    # When a second deployment is deployed
    second = runtime.deploy("dep_2", "prj_a", push_image(repository, "v2"), Plan(), {"V": "2"})

    # Then it is a new version of the same function, and live still serves the first
    name = first.function_name
    assert second.function_name == name
    assert versions(name) == {"1": "dep_1", "2": "dep_2"}
    assert [c["ImageUri"] for c in calls.of("UpdateFunctionCode")] == [f"{repository}:v2"]
    assert env_of(name, "2")["V"] == "2" and env_of(name, "1")["V"] == "1"
    assert alias_version(name, LIVE_ALIAS) == "1"
    assert runtime.live_version("prj_a") == "1"

    # When it is promoted, live moves; a rollback to the first moves it back
    runtime.promote("prj_a", "dep_2")
    assert alias_version(name, LIVE_ALIAS) == "2"
    runtime.promote("prj_a", "dep_1")
    assert alias_version(name, LIVE_ALIAS) == "1"
    updates = [(c["Name"], c["FunctionVersion"]) for c in calls.of("UpdateAlias")]
    assert updates == [(LIVE_ALIAS, "2"), (LIVE_ALIAS, "1")]
    # moto keeps one URL config per function whatever the Qualifier: check the calls.
    qualifiers = [c["Qualifier"] for c in calls.of("CreateFunctionUrlConfig")]
    assert qualifiers == ["dep_1", LIVE_ALIAS, "dep_2", LIVE_ALIAS, LIVE_ALIAS]
    assert {c["AuthType"] for c in calls.of("CreateFunctionUrlConfig")} == {"NONE"}


def test_deploying_the_same_deployment_twice_makes_one_version(lambda_world):
    role, repository, calls = lambda_world
    runtime = LambdaRuntime(role, poll_s=0)
    image = push_image(repository, "v1")

    first = runtime.deploy("dep_1", "prj_a", image, Plan(), {})
    again = runtime.deploy("dep_1", "prj_a", image, Plan(), {})

    assert again.version == first.version == "1"
    assert versions(first.function_name) == {"1": "dep_1"}
    assert [c["Name"] for c in calls.of("CreateAlias")] == ["dep_1"]
    assert {c["Qualifier"] for c in calls.of("CreateFunctionUrlConfig")} == {"dep_1"}

    # A deploy cut short after publishing (no alias yet) is finished, not published again
    client("lambda").delete_alias(FunctionName=first.function_name, Name="dep_1")
    assert runtime.deploy("dep_1", "prj_a", image, Plan(), {}).version == "1"
    assert versions(first.function_name) == {"1": "dep_1"}
    assert alias_version(first.function_name, "dep_1") == "1"
    assert len(calls.of("PublishVersion")) == 1


def test_stop_removes_an_old_deployment_and_leaves_live_serving(lambda_world):
    role, repository, calls = lambda_world
    runtime = LambdaRuntime(role, poll_s=0)
    runtime.deploy("dep_1", "prj_a", push_image(repository, "v1"), Plan(), {})
    runtime.promote("prj_a", "dep_1")
    app = runtime.deploy("dep_2", "prj_a", push_image(repository, "v2"), Plan(), {})
    runtime.promote("prj_a", "dep_2")

    runtime.stop("prj_a", "dep_1")
    runtime.stop("prj_a", "dep_1")

    assert versions(app.function_name) == {"2": "dep_2"}
    assert alias_version(app.function_name, "dep_1") is None
    assert alias_version(app.function_name, LIVE_ALIAS) == "2"
    assert alias_version(app.function_name, "dep_2") == "2"
    assert {c["Qualifier"] for c in calls.of("DeleteFunctionUrlConfig")} == {"dep_1"}
    assert [c.get("Qualifier") for c in calls.of("DeleteFunction")] == ["1"]


def test_stopping_the_live_deployment_takes_the_project_offline(lambda_world):
    role, repository, calls = lambda_world
    runtime = LambdaRuntime(role, poll_s=0)
    app = runtime.deploy("dep_1", "prj_a", push_image(repository, "v1"), Plan(), {})
    runtime.promote("prj_a", "dep_1")

    runtime.stop("prj_a", "dep_1")

    assert runtime.live_version("prj_a") is None
    assert versions(app.function_name) == {}
    deleted = {c["Qualifier"] for c in calls.of("DeleteFunctionUrlConfig")}
    assert deleted == {"dep_1", LIVE_ALIAS}
    runtime.delete_project("prj_a")
    runtime.delete_project("prj_a")
    assert client("lambda").list_functions()["Functions"] == []


def test_a_stop_that_lost_its_alias_still_finds_the_version(lambda_world):
    role, repository, _ = lambda_world
    runtime = LambdaRuntime(role, poll_s=0)
    app = runtime.deploy("dep_1", "prj_a", push_image(repository, "v1"), Plan(), {})
    client("lambda").delete_alias(FunctionName=app.function_name, Name="dep_1")

    runtime.stop("prj_a", "dep_1")

    assert versions(app.function_name) == {}


def test_a_missing_image_or_reserved_env_is_a_deploy_failure(lambda_world):
    role, repository, calls = lambda_world
    runtime = LambdaRuntime(role, poll_s=0)

    with pytest.raises(DeployFailed, match="Lambda refused the deployment"):
        runtime.deploy("dep_1", "prj_a", f"{repository}:never-pushed", Plan(), {})
    with pytest.raises(DeployFailed, match="AWS_REGION"):
        runtime.deploy("dep_2", "prj_a", push_image(repository, "v1"), Plan(), {"AWS_REGION": "x"})

    assert calls.of("PublishVersion") == []
    assert client("lambda").list_functions()["Functions"] == []


def test_health_check_gets_the_deployments_own_url(lambda_world):
    role, repository, _ = lambda_world
    requested = []
    answers = iter([200, 503])

    def fake_get(url: str, timeout_s: float) -> int:
        requested.append((url, timeout_s))
        return next(answers)

    runtime = LambdaRuntime(role, poll_s=0, http_get=fake_get)
    app = runtime.deploy("dep_1", "prj_a", push_image(repository, "v1"), Plan(), {})

    assert runtime.health_check("prj_a", "dep_1", "/health", 3) == (
        True,
        "GET /health answered 200",
    )
    assert runtime.health_check("prj_a", "dep_1", "health", 3) == (
        False,
        "GET /health answered 503",
    )
    assert requested == [(app.url.rstrip("/") + "/health", 3)] * 2
    assert runtime.health_check("prj_a", "dep_9", "/", 3) == (
        False,
        "the deployment has no function version or URL",
    )


def test_health_check_reports_a_network_failure(lambda_world):
    role, repository, _ = lambda_world

    def unreachable(url: str, timeout_s: float) -> int:
        raise TimeoutError("timed out")

    runtime = LambdaRuntime(role, poll_s=0, http_get=unreachable)
    runtime.deploy("dep_1", "prj_a", push_image(repository, "v1"), Plan(), {})

    assert runtime.health_check("prj_a", "dep_1", "/", 1) == (False, "GET / failed: timed out")


def test_http_status_answers_the_status_without_following_redirects():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302 if self.path == "/moved" else 200)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert http_status(base + "/moved", 2) == 302
        assert http_status(base + "/health?x=1", 2) == 200
    finally:
        server.shutdown()
        server.server_close()


def test_runtime_logs_are_the_versions_cloudwatch_events_in_order(lambda_world):
    role, repository, _ = lambda_world
    runtime = LambdaRuntime(role, poll_s=0)
    runtime.deploy("dep_1", "prj_a", push_image(repository, "v1"), Plan(), {})
    runtime.deploy("dep_2", "prj_a", push_image(repository, "v2"), Plan(), {})
    logs = client("logs")
    group = "/aws/lambda/shipyard-app-prj_a"  # the deploy made it
    start_ms = int(time.time()) * 1000
    for version, lines in (("1", ["one", "two", "three"]), ("2", ["other version"])):
        stream = f"2026/01/01/[{version}]abcdef"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[
                {"timestamp": start_ms + i, "message": m + "\n"} for i, m in enumerate(lines)
            ],
        )

    first = runtime.logs("prj_a", "dep_1", 0, 2)
    rest = runtime.logs("prj_a", "dep_1", first[-1]["seq"], 100)

    assert [(line["phase"], line["message"]) for line in first + rest] == [
        ("app", "one"),
        ("app", "two"),
        ("app", "three"),
    ]
    assert [line["seq"] for line in first + rest] == sorted({line["seq"] for line in first + rest})
    assert first[0]["timestamp"] == time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_ms / 1000)
    )
    assert runtime.logs("prj_a", "dep_1", rest[-1]["seq"], 100) == []
    assert runtime.logs("prj_b", "dep_9", 0, 100) == []


def retention_of(group: str) -> int | None:
    (found,) = client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    return found.get("retentionInDays")


def test_a_projects_log_group_is_made_before_its_function_with_the_retention(lambda_world):
    role, repository, calls = lambda_world
    runtime = LambdaRuntime(role, poll_s=0, log_retention_days=14)

    # When a project is deployed for the first time
    runtime.deploy("dep_1", "prj_a", push_image(repository, "v1"), Plan(), {})

    # Then its function's log group exists, keeping events 14 days, made before the function
    # (Lambda would make one that keeps them forever)
    assert retention_of("/aws/lambda/shipyard-app-prj_a") == 14
    order = [name for name, _ in calls.made]
    assert order.index("CreateLogGroup") < order.index("PutRetentionPolicy")
    assert order.index("PutRetentionPolicy") < order.index("CreateFunction")

    # Given a project whose log group Lambda made, without retention, and a new setting
    client("logs").create_log_group(logGroupName="/aws/lambda/shipyard-app-prj_b")
    assert retention_of("/aws/lambda/shipyard-app-prj_b") is None
    runtime = LambdaRuntime(role, poll_s=0)
    # When both deploy again, with the default retention
    runtime.deploy("dep_2", "prj_b", push_image(repository, "v2"), Plan(), {})
    runtime.deploy("dep_3", "prj_a", push_image(repository, "v3"), Plan(), {})
    # Then the existing groups keep events the default 30 days
    assert retention_of("/aws/lambda/shipyard-app-prj_b") == 30
    assert retention_of("/aws/lambda/shipyard-app-prj_a") == 30
    # And a deploy that publishes nothing (the same deployment again) changes nothing
    before = len(calls.of("PutRetentionPolicy"))
    runtime.deploy("dep_3", "prj_a", f"{repository}:v3", Plan(), {})
    assert len(calls.of("PutRetentionPolicy")) == before


def test_the_aws_runtime_keeps_app_logs_for_the_stacks_retention_setting(lambda_world, monkeypatch):
    # Given Shipyard on AWS, whose template passes LogRetentionDays as this setting
    role, repository, _ = lambda_world
    monkeypatch.setenv("SHIPYARD_STAGE", "prod")
    monkeypatch.setenv("SHIPYARD_APP_ROLE_ARN", role)
    monkeypatch.setenv("SHIPYARD_APP_LOG_RETENTION_DAYS", "7")
    get_settings.cache_clear()
    # When the pipeline's app runtime starts a deployment
    spec = AppSpec("dep_1", "prj_a", Plan(), None, push_image(repository, "v1"), {})
    engines.apps().start(spec, None)
    # Then the project's log group keeps its events 7 days
    assert retention_of("/aws/lambda/shipyard-app-prj_a") == 7
