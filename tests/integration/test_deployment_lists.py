"""A filtered deployments list reads what it returns, however many deployments the
project has (the by_project_status index), and pages through a status correctly."""

from __future__ import annotations

from chalicelib.deployments import service as deployments
from chalicelib.store import deployments as store
from chalicelib.store import projects as project_store


def _seed(project: dict, statuses: list[str]) -> list[str]:
    """Deployments recorded as the pipeline records them (setup, not the behaviour)."""
    made = []
    full = project_store.get(project["workspace_id"], project["id"])
    for count, status in enumerate(statuses):
        item = deployments.new_item(full, status, {"type": "upload"}, None)
        item.update(number=count + 1, log_seq=1, log_reserved_ms=0)
        store.create(item, None, count)
        made.append(item["id"])
    return made


def test_a_status_page_reads_only_what_it_returns(api, project, dynamodb_calls):
    ids = _seed(project, ["running"] + ["stopped"] * 60 + ["failed"] * 3)
    path = f"/v1/projects/{project['id']}/deployments"

    dynamodb_calls.clear()
    running = api.get(f"{path}?status=running&limit=5").json
    assert [d["id"] for d in running["data"]] == [ids[0]]
    assert running["pagination"]["has_more"] is False
    # One Query for the page, though 63 newer deployments of other statuses come first
    assert dynamodb_calls.count("Query") == 1, dynamodb_calls

    # Paging through one status with cursors: newest first, each once
    seen, cursor = [], None
    while True:
        query = "?status=failed&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(path + query).json
        seen += [d["id"] for d in page["data"]]
        cursor = page["pagination"]["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids[61:]))


def test_a_status_change_moves_the_deployment_between_filtered_lists(api, project):
    (first,) = _seed(project, ["pending"])
    path = f"/v1/projects/{project['id']}/deployments"
    canceled = api.post(f"{path}/{first}/cancel")
    assert canceled.status_code == 200 and canceled.json["data"]["status"] == "canceled"
    assert api.get(f"{path}?status=pending").json["data"] == []
    assert [d["id"] for d in api.get(f"{path}?status=canceled").json["data"]] == [first]
