"""The status machine and its store on moto: single conditional writes, never backwards,
one running deployment per project, the build slots and the sweeper."""

from __future__ import annotations

import pytest


@pytest.fixture
def project_item(api, project):
    from chalicelib.store import projects as project_store

    return project_store.get(project["workspace_id"], project["id"])


def new_deployment(project_item, status="pending", **fields):
    from chalicelib.deployments import env as deployment_env
    from chalicelib.deployments import service as deployments

    item = deployments.new_item(
        project_item, status, {"type": "upload"}, None, source_key="uploads/x.tar.gz", **fields
    )
    item["env_key"] = deployment_env.snapshot_env(project_item, item["id"])
    return deployments.create(project_item, item, "a test")


def reload(item):
    from chalicelib.store import deployments as store

    return store.get(item["project_id"], item["id"])


def messages(item):
    from chalicelib.store import logs

    return [(line["seq"], line["message"]) for line in logs.read_after(item["id"], 0, 1000)]


def test_each_transition_is_conditional_and_logged(project_item):
    from chalicelib.deployments import service as deployments

    item = new_deployment(project_item)
    building = deployments.move(item, "building", "Building")
    built = deployments.move(building, "built", "Built", {"artifact_key": "a.tar.gz"})
    failed = deployments.fail(built, "deploy_failed", "the app exited")
    assert failed["status"] == "failed"
    assert failed["error_code"] == "deploy_failed"
    assert failed["finished_at"] is not None
    assert "active_status" not in failed

    # A late or repeated event does not move it back, and writes nothing
    assert deployments.move(built, "building", "late") is None
    assert deployments.move(failed, "deploying", "late") is None
    assert deployments.move(failed, "canceled", "late") is None
    assert reload(item)["status"] == "failed"
    assert [seq for seq, _ in messages(item)] == [1, 2, 3, 4]
    assert messages(item)[-1][1] == "Failed (deploy_failed): the app exited"
    assert reload(item)["log_seq"] == 4


def test_promotion_keeps_exactly_one_running_and_records_releases(api, project_item):
    from chalicelib.deployments import service as deployments
    from chalicelib.store import deployments as store

    first = new_deployment(project_item, "deploying", url="http://127.0.0.1:1")
    second = new_deployment(project_item, "deploying", url="http://127.0.0.1:2")
    assert deployments.promote(first) == (True, None)
    assert deployments.promote(second) == (True, first["id"])
    # Promoting again is a no-op that reports it is running
    assert deployments.promote(second) == (True, None)

    statuses = {d["id"]: d["status"] for d in store.all_of_project(project_item["id"])}
    assert statuses == {first["id"]: "stopped", second["id"]: "running"}
    project = api.get(f"/v1/projects/{project_item['id']}").json["data"]
    assert project["status"] == "running"
    assert project["current_deployment_id"] == second["id"]
    assert project["url"] == "http://127.0.0.1:2"
    releases = api.get(f"/v1/projects/{project_item['id']}/releases").json["data"]
    assert [(r["version"], r["deployment_id"]) for r in releases] == [
        (2, second["id"]),
        (1, first["id"]),
    ]
    running = api.get(f"/v1/projects/{project_item['id']}/deployments/{second['id']}").json
    assert running["data"]["release_id"] == releases[0]["id"]
    assert messages(first)[-1][1] == "Stopped: replaced by deployment #2"
    assert messages(second)[-1][1] == "Running at http://127.0.0.1:2"
    # A stopped deployment can not be promoted or failed any more
    assert deployments.promote(reload(first)) == (False, None)
    assert deployments.fail(reload(first), "internal_error", "late") is None


def test_a_failure_of_a_new_version_leaves_a_running_project_running(api, project_item):
    from chalicelib.deployments import service as deployments

    live = new_deployment(project_item, "deploying", url="http://127.0.0.1:3")
    deployments.promote(live)
    broken = new_deployment(project_item, "deploying")
    deployments.fail(broken, "health_check_failed", "GET / answered 500")
    project = api.get(f"/v1/projects/{project_item['id']}").json["data"]
    assert project["status"] == "running"
    assert project["current_deployment_id"] == live["id"]


def test_a_failed_first_deployment_marks_the_project_failed(api, project_item):
    from chalicelib.deployments import service as deployments

    item = new_deployment(project_item)
    assert api.get(f"/v1/projects/{project_item['id']}").json["data"]["status"] == "deploying"
    deployments.fail(item, "build_failed", "npm ERR!")
    assert api.get(f"/v1/projects/{project_item['id']}").json["data"]["status"] == "failed"


def test_build_slots_are_idempotent_and_bounded(project_item):
    from chalicelib.store import build_slots

    workspace = project_item["workspace_id"]
    assert build_slots.acquire(workspace, "dep_a", 2)
    assert build_slots.acquire(workspace, "dep_a", 2)  # the same deployment again
    assert build_slots.acquire(workspace, "dep_b", 2)
    assert not build_slots.acquire(workspace, "dep_c", 2)
    build_slots.release(workspace, "dep_a")
    build_slots.release(workspace, "dep_a")
    assert build_slots.holders(workspace) == {"dep_b"}
    assert build_slots.acquire(workspace, "dep_c", 2)
    assert build_slots.holders(workspace) == {"dep_b", "dep_c"}


def test_leaving_building_frees_the_slot_and_wakes_the_oldest_waiting(project_item):
    import json

    from chalicelib.aws.clients import client
    from chalicelib.aws.queues import url
    from chalicelib.deployments import service as deployments
    from chalicelib.store import build_slots
    from chalicelib.store import deployments as store

    workspace = project_item["workspace_id"]
    running = new_deployment(project_item)
    build_slots.acquire(workspace, running["id"], 1)
    building = deployments.move(running, "building", "Building")
    waiting = new_deployment(project_item)
    assert store.pending_of_workspace(workspace, 5)[0]["id"] == waiting["id"]

    deployments.fail(building, "build_failed", "exit 1")

    assert build_slots.holders(workspace) == set()
    bodies = [
        json.loads(m["Body"])
        for m in client("sqs")
        .receive_message(QueueUrl=url("builds"), MaxNumberOfMessages=10)
        .get("Messages", [])
    ]
    assert {"kind": "build", "project_id": project_item["id"], "deployment_id": waiting["id"]} in (
        bodies
    )


def test_sweeper_fails_stuck_deployments_and_requeues_waiting_ones(monkeypatch, project_item):
    import time

    from chalicelib.core.settings import get_settings
    from chalicelib.pipeline import sweeper

    stuck_pending = new_deployment(project_item)
    stuck_building = new_deployment(project_item)
    from chalicelib.deployments import service as deployments

    stuck_building = deployments.move(stuck_building, "building", "Building")
    time.sleep(1.05)
    monkeypatch.setenv("SHIPYARD_PENDING_TIMEOUT_S", "1")
    monkeypatch.setenv("SHIPYARD_BUILD_TIMEOUT_S", "1")
    get_settings.cache_clear()
    fresh = new_deployment(project_item)

    counts = sweeper.sweep()

    assert counts["timed_out"] == 2
    for item in (stuck_pending, stuck_building):
        swept = reload(item)
        assert (swept["status"], swept["error_code"]) == ("failed", "timed_out")
        assert "for more than 1 s" in swept["error_message"]
    assert reload(fresh)["status"] == "pending"
    monkeypatch.setenv("SHIPYARD_PENDING_TIMEOUT_S", "1800")
    monkeypatch.setenv("SHIPYARD_PENDING_REQUEUE_S", "0")
    get_settings.cache_clear()
    assert sweeper.sweep() == {"timed_out": 0, "requeued": 1}
