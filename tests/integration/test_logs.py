"""Deployment logs through the HTTP surface on moto: JSON and text pages, the SSE frames,
resuming with Last-Event-ID, and lines whose writer is still busy or died."""

from __future__ import annotations

import json

import pytest

from chalicelib.deployments.status import ENDED
from tests.integration.test_deployment_status import new_deployment


@pytest.fixture(autouse=True)
def fast_streams(monkeypatch):
    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("SHIPYARD_SSE_WAIT_S", "0.5")
    monkeypatch.setenv("SHIPYARD_SSE_RETRY_MS", "250")
    monkeypatch.setenv("SHIPYARD_LOG_GAP_GRACE_S", "0.5")
    get_settings.cache_clear()


@pytest.fixture
def deployment(project_item):
    return new_deployment(project_item)


@pytest.fixture
def project_item(api, project):
    from chalicelib.store import projects as project_store

    return project_store.get(project["workspace_id"], project["id"])


def path(item, tail=""):
    return f"/v1/projects/{item['project_id']}/deployments/{item['id']}/logs{tail}"


def write(item, *messages, phase="build"):
    from chalicelib.deployments import logs

    logs.append(item["project_id"], item["id"], [(phase, m) for m in messages])


def raw(api, url, headers=None):
    """A request whose answer is not JSON (text, event streams)."""
    sent = {"Authorization": f"Bearer {api.key}", **(headers or {})}
    return api.client.http.request("GET", url, headers=sent)


def frames(body: str) -> list[dict]:
    """Parse an SSE body into frames: {"id": ..., "data": ..., "retry": ...}."""
    parsed = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        frame = {}
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            frame[field] = json.loads(value) if field == "data" else value
        parsed.append(frame)
    return parsed


def test_json_pages_after_a_cursor(api, deployment):
    write(deployment, *[f"line {i}" for i in range(5)])
    first = api.get(path(deployment, "?limit=3")).json
    assert [line["seq"] for line in first["data"]] == [1, 2, 3]
    assert first["data"][1] == {
        "seq": 2,
        "timestamp": first["data"][1]["timestamp"],
        "phase": "build",
        "message": "line 0",
    }
    assert first["pagination"] == {"next_cursor": "3", "has_more": True}
    assert first["status"] == "pending"
    rest = api.get(path(deployment, "?after=3")).json
    assert [line["message"] for line in rest["data"]] == ["line 2", "line 3", "line 4"]
    assert rest["pagination"] == {"next_cursor": "6", "has_more": False}
    empty = api.get(path(deployment, "?after=6")).json
    assert empty["data"] == [] and empty["pagination"]["next_cursor"] == "6"
    for bad in ("?after=-1", "?after=x", "?limit=0", "?limit=1001"):
        assert api.get(path(deployment, bad)).status_code == 400, bad


def test_text_plain(api, deployment):
    write(deployment, "npm install", "added 3 packages")
    response = raw(api, path(deployment, "?after=1"), {"Accept": "text/plain"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.body.decode() == "[build] npm install\n[build] added 3 packages\n"


def test_a_line_still_being_written_holds_back_the_ones_after_it(api, deployment):
    from chalicelib.store import logs as store

    # A writer reserved seq 2 and has not written it yet; another wrote seq 3.
    reserved = store.reserve(deployment["project_id"], deployment["id"], 1, ENDED)
    write(deployment, "later line")
    held = api.get(path(deployment, "?after=1")).json
    assert held["data"] == []
    # ... and the page says there is more to read: a client reads again, not stops.
    assert held["pagination"] == {"next_cursor": "1", "has_more": True}
    as_text = raw(api, path(deployment, "?after=1"), {"Accept": "text/plain"})
    assert (as_text.body, as_text.headers["X-Has-More"]) == (b"", "true")

    # Once written, both arrive in order, and that is all.
    store.put_line(
        deployment["id"],
        {"seq": reserved, "timestamp": "2026-01-01T00:00:00Z", "phase": "build", "message": "x"},
    )
    page = api.get(path(deployment, "?after=1")).json
    assert [(line["seq"], line["message"]) for line in page["data"]] == [
        (2, "x"),
        (3, "later line"),
    ]
    assert page["pagination"] == {"next_cursor": "3", "has_more": False}
    as_text = raw(api, path(deployment, "?after=1"), {"Accept": "text/plain"})
    assert as_text.headers["X-Has-More"] == "false"


def test_a_hole_left_by_a_dead_writer_is_stepped_over_after_the_grace(api, deployment):
    import time

    from chalicelib.store import logs as store

    store.reserve(deployment["project_id"], deployment["id"], 1, ENDED)  # never written
    write(deployment, "after the hole")
    deadline = time.monotonic() + 5
    while True:
        lines = api.get(path(deployment, "?after=1")).json["data"]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(line["seq"], line["message"]) for line in lines] == [(3, "after the hole")]


def test_sse_frames_resume_and_end(api, deployment):
    from chalicelib.deployments import service as deployments

    write(deployment, "one", "two")
    first = raw(api, path(deployment, "/stream"))
    assert first.status_code == 200
    assert first.headers["Content-Type"].startswith("text/event-stream")
    got = frames(first.body.decode())
    assert got[0] == {"retry": "250"}
    assert got[1]["data"] == {"type": "status", "status": "pending"}
    logs = [f for f in got if f.get("data", {}).get("type") == "log"]
    assert [f["id"] for f in logs] == ["1", "2", "3"]
    assert logs[1]["data"]["message"] == "one"
    assert set(logs[1]["data"]) == {"type", "seq", "phase", "message", "timestamp"}
    assert not any(f.get("data", {}).get("type") == "done" for f in got)

    # Nothing new: the response ends after the bounded wait, and the client comes back
    idle = raw(api, path(deployment, "/stream"), {"Last-Event-ID": "3"})
    assert idle.status_code == 200
    assert [f["data"]["type"] for f in frames(idle.body.decode()) if "data" in f] == ["status"]

    # The deployment ends: the rest of the lines, the status, then done
    deployments.move(deployment, "canceled", "Canceled")
    last = raw(api, path(deployment, "/stream"), {"Last-Event-ID": "3"})
    got = frames(last.body.decode())
    assert [f["id"] for f in got if "id" in f] == ["4"]
    assert got[-1]["data"] == {"type": "done", "status": "canceled"}

    # Reconnecting after the end with nothing left: 204 tells EventSource to stop
    assert raw(api, path(deployment, "/stream"), {"Last-Event-ID": "4"}).status_code == 204
    assert raw(api, path(deployment, "/stream?after=4")).status_code == 204
    # A fresh client still gets the whole log
    whole = frames(raw(api, path(deployment, "/stream")).body.decode())
    assert [f["id"] for f in whole if "id" in f] == ["1", "2", "3", "4"]


def test_sse_answers_early_when_lines_arrive(api, deployment, monkeypatch):
    import threading
    import time

    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("SHIPYARD_SSE_WAIT_S", "20")
    get_settings.cache_clear()
    threading.Timer(0.3, write, args=(deployment, "arrives during the wait")).start()
    started = time.monotonic()
    response = raw(api, path(deployment, "/stream"), {"Last-Event-ID": "1"})
    elapsed = time.monotonic() - started
    got = [f for f in frames(response.body.decode()) if f.get("id")]
    assert [f["data"]["message"] for f in got] == ["arrives during the wait"]
    assert elapsed < 5


def test_a_response_with_a_new_status_waits_for_the_line_it_reserved(api, deployment, monkeypatch):
    """A status change reserves its own line and writes it just after: a response that
    carries the new status also carries that line, so no client shows the status above it."""
    import threading
    import time

    from chalicelib.core.settings import get_settings
    from chalicelib.store import deployments as deployment_store
    from chalicelib.store import logs as store

    monkeypatch.setenv("SHIPYARD_SSE_WAIT_S", "5")
    monkeypatch.setenv("SHIPYARD_LOG_GAP_GRACE_S", "5")
    get_settings.cache_clear()

    def change_then_write_its_line():
        time.sleep(0.3)  # the response is open by now, with the status it had
        moved = deployment_store.transition(
            deployment["project_id"],
            deployment["id"],
            "building",
            ("pending",),
            "2026-01-01T00:00:00Z",
        )
        time.sleep(0.6)
        line = {"seq": moved["log_seq"], "timestamp": "2026-01-01T00:00:00Z", "phase": "system"}
        store.put_line(deployment["id"], {**line, "message": "Building"})

    writer = threading.Thread(target=change_then_write_its_line)
    writer.start()
    started = time.monotonic()
    got = frames(raw(api, path(deployment, "/stream?after=1")).body.decode())
    writer.join()
    assert time.monotonic() - started >= 0.7  # it waited for the line ...
    data = [f["data"] for f in got if "data" in f]
    kinds = [d.get("status") or d.get("message") for d in data if d["type"] != "done"]
    assert kinds == ["pending", "Building", "building"]  # the status after its line
    assert [d["message"] for d in data if d["type"] == "log"] == ["Building"]  # ... and has it
