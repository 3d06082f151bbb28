"""The orchestration (pipeline/builds.py, pipeline/workflow.py, pipeline/actions.py) on
in-memory fakes of its two ports, with the network off: no build runs and no app starts;
the fakes record what the pipeline asked of them. The tables are moto's in-process ones,
since what moves a deployment is a conditional write."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.ports import AppRuntime, AppSpec, BuildEngine, BuildJob, BuildOutcome, OnLog


class FakeBuildEngine:
    """Starts nothing: keeps each job and its callbacks until the test finishes it."""

    method = "fake"

    def __init__(self) -> None:
        self.jobs: dict[str, tuple[BuildJob, OnLog, Any]] = {}
        self.canceled: list[str] = []

    def start(self, job: BuildJob, on_log: OnLog, on_finished) -> dict[str, Any]:
        self.jobs[job.deployment_id] = (job, on_log, on_finished)
        return {}

    def cancel(self, deployment_id: str, build_id: str | None) -> None:
        self.canceled.append(deployment_id)

    def finish(self, deployment_id: str, outcome: BuildOutcome, lines=()) -> None:
        _, on_log, on_finished = self.jobs.pop(deployment_id)
        for phase, message in lines:
            on_log(phase, message)
        on_finished(outcome)


class FakeApps:
    """Apps as entries of a dict: started, healthy when the test says, stopped."""

    def __init__(self) -> None:
        self.running: dict[str, AppSpec] = {}
        self.healthy: set[str] = set()
        self.stopped: list[str] = []

    def start(self, spec: AppSpec, on_log: OnLog | None) -> str:
        self.running[spec.deployment_id] = spec
        return f"http://app.test/{spec.deployment_id}"

    def health_check(self, item: dict[str, Any], path: str, timeout_s: float) -> tuple[bool, str]:
        ok = item["id"] in self.healthy
        return ok, f"GET {path} answered {200 if ok else 503}"

    def alive(self, item: dict[str, Any]) -> tuple[bool, str]:
        return item["id"] in self.running, "exited"

    def promote(self, item: dict[str, Any]) -> str:
        return item["url"]

    def stop(self, item: dict[str, Any]) -> None:
        self.running.pop(item["id"], None)
        self.stopped.append(item["id"])


def test_the_fakes_are_the_ports():
    # Given the Protocols of chalicelib/ports.py
    build: BuildEngine = FakeBuildEngine()
    apps: AppRuntime = FakeApps()
    # Then the fakes (like the real adapters) have every method the pipeline calls
    for port, fake in ((BuildEngine, build), (AppRuntime, apps)):
        for name in port.__dict__:
            if not name.startswith("_") and callable(port.__dict__[name]):
                assert callable(getattr(fake, name)), (port.__name__, name)


@pytest.fixture
def fakes(aws):
    from chalicelib.pipeline import engines, wiring

    wiring.wire()
    build, apps = FakeBuildEngine(), FakeApps()
    with engines.given(build_engine=build, apps=apps):
        yield build, apps


@pytest.fixture
def pending(api, fakes):
    """A project with an env var, and a deployment of it waiting for its build."""
    from tests.integration.conftest import deploy_archive
    from tests.pipeline_support import targz

    project = api.post("/v1/projects", {"name": "Shop"}).json["data"]
    api.put(f"/v1/projects/{project['id']}/env", {"vars": {"MODE": {"value": "prod"}}})
    deployment = deploy_archive(api, project["id"], targz({"index.html": "hi"}))
    return project, deployment


def static_plan():
    from chalicelib.buildplan.model import BuildPlan

    fields = ("root_directory", "install_command", "build_command", "start_command")
    return BuildPlan(
        runtime="static",
        framework="static",
        output_directory=None,
        port=None,
        **dict.fromkeys(fields),
    )


def status_of(project_id: str, deployment_id: str) -> dict[str, Any]:
    from chalicelib.store import deployments as store

    return store.get(project_id, deployment_id)


def test_a_build_goes_to_the_engine_once_with_the_projects_env(pending, fakes):
    from chalicelib.pipeline import builds

    build, _ = fakes
    project, deployment = pending
    # When the builds queue's message comes, twice
    builds.start(project["id"], deployment["id"])
    builds.start(project["id"], deployment["id"])
    # Then one job reached the engine, with the env the deployment snapshotted
    [job] = [job for job, _, _ in build.jobs.values()]
    assert job.deployment_id == deployment["id"] and job.env == {"MODE": "prod"}
    item = status_of(project["id"], deployment["id"])
    assert item["status"] == "building" and item["build_method"] == "fake"


def test_a_failed_build_fails_the_deployment_frees_its_slot_and_marks_the_project(pending, fakes):
    from chalicelib.pipeline import builds
    from chalicelib.store import build_slots as slot_store
    from chalicelib.store import projects as project_store

    build, _ = fakes
    project, deployment = pending
    builds.start(project["id"], deployment["id"])
    assert slot_store.holders(project["workspace_id"]) == {deployment["id"]}
    # When the engine reports a failure
    build.finish(
        deployment["id"],
        BuildOutcome.failed("build_failed", "exit 3"),
        lines=[("build", "boom")],
    )
    # Then the deployment failed with the engine's reason, the slot is free again
    # and the project (which runs nothing) says failed
    item = status_of(project["id"], deployment["id"])
    assert (item["status"], item["error_code"]) == ("failed", "build_failed")
    assert slot_store.holders(project["workspace_id"]) == set()
    stored = project_store.get(project["workspace_id"], project["id"])
    assert stored["status"] == "failed"


def test_a_built_deployment_goes_to_the_deploy_workflow(pending, fakes):
    from chalicelib.aws.clients import client
    from chalicelib.aws.workflows import state_machine_arn
    from chalicelib.pipeline import builds

    build, _ = fakes
    project, deployment = pending
    builds.start(project["id"], deployment["id"])
    plan = static_plan()
    # When the engine reports success
    build.finish(deployment["id"], BuildOutcome(True, plan, "artifacts/x.tar.gz", None, None))
    # Then the deployment is built and its workflow execution exists, named after it
    assert status_of(project["id"], deployment["id"])["status"] == "built"
    executions = client("stepfunctions").list_executions(stateMachineArn=state_machine_arn())
    assert [e["name"] for e in executions["executions"]] == [deployment["id"]]


def built_item(pending, build) -> dict[str, Any]:
    from chalicelib.pipeline import builds

    project, deployment = pending
    builds.start(project["id"], deployment["id"])
    plan = static_plan()
    build.finish(deployment["id"], BuildOutcome(True, plan, "artifacts/x.tar.gz", None, None))
    return status_of(project["id"], deployment["id"])


def test_the_workflow_steps_start_check_and_promote_through_the_runtime_port(pending, fakes):
    from chalicelib.pipeline import workflow
    from chalicelib.store import projects as project_store

    build, apps = fakes
    project, _ = pending
    item = built_item(pending, build)
    # Deploy: the runtime gets the spec (plan, artifact, env) and gives the URL
    assert workflow.deploy(item, {}) == {"url": f"http://app.test/{item['id']}"}
    spec = apps.running[item["id"]]
    assert spec.artifact_key == "artifacts/x.tar.gz" and spec.env == {"MODE": "prod"}
    item = status_of(project["id"], item["id"])
    # Health check: not yet healthy is a retryable failure; then it passes
    with pytest.raises(workflow.StepFailed) as unhealthy:
        workflow.health_check(item, {})
    assert unhealthy.value.error == workflow.UNHEALTHY
    apps.healthy.add(item["id"])
    assert workflow.health_check(item, {}) == {"healthy": True}
    # Promote: running, and the project serves it at the runtime's URL
    assert workflow.promote(item, {}) == {"promoted": True}
    assert status_of(project["id"], item["id"])["status"] == "running"
    stored = project_store.get(project["workspace_id"], project["id"])
    assert stored["current_deployment_id"] == item["id"]
    assert stored["url"] == f"http://app.test/{item['id']}"


def test_deleting_a_project_stops_what_it_runs(pending, fakes, api):
    from chalicelib.pipeline import workflow

    build, apps = fakes
    project, _ = pending
    item = built_item(pending, build)
    workflow.deploy(item, {})
    apps.healthy.add(item["id"])
    workflow.promote(status_of(project["id"], item["id"]), {})
    # When the project is deleted
    assert api.delete(f"/v1/projects/{project['id']}").status_code == 204
    # Then its running app was stopped through the port
    assert item["id"] in apps.stopped and item["id"] not in apps.running
