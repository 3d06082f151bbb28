"""`make deploy-aws` (infra/deploy-aws.sh) against a fake `aws` that records its calls:
the order of the steps, the bucket it makes, and the CursorSecret of a first deploy only."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "deploy-aws.sh"

FAKE_AWS = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
case "$*" in
  *"configure get region"*) echo eu-west-1 ;;
  *"sts get-caller-identity"*) echo 123456789012 ;;
  *"lambda get-account-settings"*) echo "${CONCURRENCY_LIMIT:-1000}" ;;
  *"s3api head-bucket"*) [ -n "$BUCKET_EXISTS" ] || exit 254 ;;
  *"cloudformation describe-stacks --stack-name"*"--query"*) echo https://api.example/api/ ;;
  *"cloudformation describe-stacks"*) [ -n "$STACK_EXISTS" ] || exit 254 ;;
esac
exit 0
"""


@pytest.fixture
def run_deploy(tmp_path):
    fake = tmp_path / "bin" / "aws"
    fake.parent.mkdir()
    fake.write_text(FAKE_AWS)
    fake.chmod(0o755)
    calls = tmp_path / "calls"

    def run(**env: str) -> tuple[list[str], str]:
        calls.write_text("")
        environment = {
            k: v for k, v in os.environ.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")
        }
        environment.update(PATH=f"{fake.parent}:{os.environ['PATH']}", CALLS=str(calls), **env)
        done = subprocess.run(
            ["bash", str(SCRIPT)], env=environment, capture_output=True, text=True, check=True
        )
        return calls.read_text().splitlines(), done.stdout

    return run


def test_a_first_deploy_makes_the_bucket_validates_and_draws_a_cursor_secret(run_deploy):
    calls, out = run_deploy(PARAMS="AlarmEmail=ops@example.com")
    steps = [" ".join(c.split()[2:4]) for c in calls]
    assert steps.index("s3api create-bucket") < steps.index("cloudformation package")
    assert steps.index("cloudformation package") < steps.index("cloudformation validate-template")
    assert steps.index("cloudformation validate-template") < steps.index("cloudformation deploy")
    create = next(c for c in calls if "create-bucket " in c)
    assert "--bucket shipyard-deploy-123456789012-eu-west-1" in create
    assert "LocationConstraint=eu-west-1" in create
    assert any("put-public-access-block" in c for c in calls)
    validate = next(c for c in calls if "validate-template" in c)
    assert "--template-url https://shipyard-deploy-123456789012-eu-west-1.s3.eu-west-1" in validate
    deploy = next(c for c in calls if "cloudformation deploy" in c)
    assert "--stack-name shipyard" in deploy
    assert "CAPABILITY_IAM CAPABILITY_AUTO_EXPAND" in deploy
    secret = deploy.split("CursorSecret=")[1].split()[0]
    assert len(secret) == 64
    assert deploy.endswith("AlarmEmail=ops@example.com")
    assert "BuildsConcurrency" not in deploy
    assert "https://api.example/api/" in out


def test_an_update_keeps_the_cursor_secret_and_the_bucket(run_deploy):
    calls, _ = run_deploy(STACK_EXISTS="1", BUCKET_EXISTS="1", STACK="staging")
    assert not any("create-bucket" in c for c in calls)
    deploy = next(c for c in calls if "cloudformation deploy" in c)
    assert "--stack-name staging" in deploy
    assert "CursorSecret" not in deploy
    assert "--parameter-overrides" not in deploy


def test_a_first_deploy_reserves_no_builds_concurrency_on_an_account_limited_to_10(run_deploy):
    calls, out = run_deploy(CONCURRENCY_LIMIT="10")
    deploy = next(c for c in calls if "cloudformation deploy" in c)
    assert "BuildsConcurrency=0" in deploy
    assert "Lambda concurrency limit 10" in out
    calls, _ = run_deploy(CONCURRENCY_LIMIT="10", PARAMS="BuildsConcurrency=5")
    deploy = next(c for c in calls if "cloudformation deploy" in c)
    assert "BuildsConcurrency=0" not in deploy
    assert deploy.endswith("BuildsConcurrency=5")
