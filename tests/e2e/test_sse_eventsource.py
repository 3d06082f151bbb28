"""The log stream proven with a real EventSource client (npm `eventsource`, run by node):
a deployment's whole log arrives once, in order, across several reconnects, and a
reconnect after the end gets the 204 that makes EventSource stop.

The test stack ends each stream response after SHIPYARD_SSE_WAIT_S (conftest.STACK_ENV),
and the build below prints for several times that long, so EventSource must reconnect
with Last-Event-ID many times while the log is still being written."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import uuid

import pytest

from shipyard_cli.api import post_form
from shipyard_cli.pack import pack, read_chunks
from tests.e2e.cli import EXAMPLES
from tests.e2e.conftest import ROOT

BUILD_LINES = 40
# About 4 s of output, a line every 0.1 s; POSIX sh, nothing else needed.
SLOW_BUILD = (
    f'i=1; while [ "$i" -le {BUILD_LINES} ]; do echo "build line $i"; i=$((i + 1)); sleep 0.1; done'
)
SCRIPT = ROOT / "tests" / "e2e" / "sse_client.mjs"


@pytest.fixture(scope="module")
def node():
    path = shutil.which("node")
    if path is None or not (ROOT / "node_modules" / "eventsource").is_dir():
        pytest.fail("node and `npm install` (make node_modules/.installed) are needed")
    return path


def event_source(node: str, stack, url: str, *flags: str) -> dict:
    result = subprocess.run(
        [node, str(SCRIPT), url, stack.key, *flags],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def start_slow_deployment(stack) -> tuple[str, str]:
    """A static site whose build prints BUILD_LINES lines over ~4 s: (project, deployment)."""
    name = f"sse-{uuid.uuid4().hex[:8]}"
    status, _, project = stack.request(
        "POST",
        "/v1/projects",
        {"name": name, "runtime": "static", "build": {"build_command": SLOW_BUILD}},
    )
    assert status == 201, project
    project_id = project["data"]["id"]
    archive = io.BytesIO()
    packed = pack(EXAMPLES / "static-site", archive)
    status, _, upload = stack.request(
        "POST", f"/v1/projects/{project_id}/uploads", {"sha256": packed.sha256}
    )
    assert status == 201, upload
    upload = upload["data"]
    post_form(upload["url"], upload["fields"], read_chunks(archive), packed.size, "site.tar.gz")
    status, _, deployment = stack.request(
        "POST",
        f"/v1/projects/{project_id}/deployments",
        {"upload_id": upload["id"]},
        headers={"Idempotency-Key": f"sse-test-{uuid.uuid4()}"},
    )
    assert status == 202, deployment
    return project_id, deployment["data"]["id"]


def whole_log(stack, project_id: str, deployment_id: str) -> list[dict]:
    lines: list[dict] = []
    after = 0
    while True:
        status, _, page = stack.request(
            "GET",
            f"/v1/projects/{project_id}/deployments/{deployment_id}/logs?after={after}&limit=1000",
        )
        assert status == 200, page
        lines += page["data"]
        if not page["pagination"]["has_more"]:
            return lines
        after = page["data"][-1]["seq"]


def test_the_whole_log_arrives_once_in_order_across_reconnects(cli_stack, node):
    # Given: a deployment building slowly
    project_id, deployment_id = start_slow_deployment(cli_stack)
    stream = f"{cli_stack.url}/v1/projects/{project_id}/deployments/{deployment_id}/logs/stream"

    # When: EventSource follows it from the start to the `done` frame
    seen = event_source(node, cli_stack, stream)

    # Then: it ended, after several connections that each resumed where the last one
    # stopped. The end is the `done` frame, or a 204 when the deployment ended while
    # EventSource was between two connections, with nothing left after its Last-Event-ID.
    assert seen["closed_by"] in ("done", "204"), seen
    assert seen["opens"] > 2, seen["requests"]
    answered = [r["status"] for r in seen["requests"]]
    assert answered == [200] * seen["opens"] + ([204] if seen["closed_by"] == "204" else [])
    resumed_from = [int(r["last_event_id"]) for r in seen["requests"][1:]]
    assert resumed_from == sorted(resumed_from), seen["requests"]
    assert len(resumed_from) == len(seen["requests"]) - 1

    # and every line arrived exactly once, in order, as `GET .../logs` has it. Lines after
    # the end can only be the running app's own output (`deploy` phase), written after it.
    log = whole_log(cli_stack, project_id, deployment_id)
    seqs = [line["seq"] for line in seen["logs"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [x["id"] for x in seen["logs"]] == [str(seq) for seq in seqs]
    assert [(x["seq"], x["phase"], x["message"]) for x in seen["logs"]] == [
        (line["seq"], line["phase"], line["message"]) for line in log[: len(seqs)]
    ]
    assert all(line["phase"] == "deploy" for line in log[len(seqs) :]), log[len(seqs) :]
    build_lines = [x["message"] for x in seen["logs"] if x["message"].startswith("build line ")]
    assert build_lines == [f"build line {i}" for i in range(1, BUILD_LINES + 1)]
    assert any(x["message"].startswith("Running at http") for x in seen["logs"])

    # and the status frames and `done` agree with the deployment
    status, _, deployment = cli_stack.request(
        "GET", f"/v1/projects/{project_id}/deployments/{deployment_id}"
    )
    assert status == 200 and deployment["data"]["status"] == "running"
    assert seen["done"] in ("running", None)
    assert "building" in seen["statuses"]


def test_after_the_end_a_reconnect_gets_204_and_eventsource_stops(cli_stack, node):
    # Given: a deployment that has ended
    project_id, deployment_id = start_slow_deployment(cli_stack)
    stream = f"{cli_stack.url}/v1/projects/{project_id}/deployments/{deployment_id}/logs/stream"
    event_source(node, cli_stack, stream)
    middle = whole_log(cli_stack, project_id, deployment_id)[BUILD_LINES // 2]["seq"]

    # When: EventSource reads it from half-way (`?after=`) and keeps reconnecting after `done`
    seen = event_source(node, cli_stack, f"{stream}?after={middle}", "--until-closed")

    # Then: it got the rest once, then `done`, then a 204 closed it for good
    log = whole_log(cli_stack, project_id, deployment_id)
    assert [x["seq"] for x in seen["logs"]] == [line["seq"] for line in log if line["seq"] > middle]
    assert seen["done"] == "running"
    assert seen["closed_by"] == "204", seen
    assert seen["requests"][-1]["status"] == 204
    assert int(seen["requests"][-1]["last_event_id"]) >= log[-1]["seq"]
