"""The local runtime log (runtimes/runtime_logs.py) on real files: an app's raw output
copied in order with the supervisor's lines, no line twice or lost across a restart of the
process that copies, a flood dropped with a visible count, and retention by compaction."""

from __future__ import annotations

import time

from chalicelib.runtimes import runtime_logs
from chalicelib.runtimes.runtime_logs import RuntimeLogs


def wait_for_lines(logs: RuntimeLogs, count: int) -> list[dict]:
    deadline = time.monotonic() + 10
    while len(found := logs.read("dep_1", 0, 10**6)) < count:
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    return found


def test_app_lines_and_supervisor_lines_keep_their_order_across_a_restart(tmp_path):
    raw = tmp_path / "dep_1.log"
    raw.write_bytes(b"starting\nfirst request\n")
    logs = RuntimeLogs(tmp_path)
    logs.follow("dep_1", raw)
    wait_for_lines(logs, 2)
    with raw.open("ab") as app:
        app.write(b"about to crash\npartial")
    logs.note("dep_1", "The app crashed (exited with code 3); restarting in 1 s")
    logs.unfollow("dep_1")  # the first process goes away mid-line

    # Another process takes over the same files (the local stack restarted).
    again = RuntimeLogs(tmp_path)
    with raw.open("ab") as app:
        app.write(b" line\nstarting\n")
    again.unfollow("dep_1")  # not followed here yet: nothing copied
    again.follow("dep_1", raw)
    found = wait_for_lines(again, 6)

    assert [(line["seq"], line["phase"], line["message"]) for line in found] == [
        (1, "app", "starting"),
        (2, "app", "first request"),
        (3, "app", "about to crash"),
        (4, "runtime", "The app crashed (exited with code 3); restarting in 1 s"),
        (5, "app", "partial line"),
        (6, "app", "starting"),
    ]
    assert again.read("dep_1", 4, 1) == [found[4]]
    assert again.read("dep_1", 5, 10) == [found[5]]


def test_a_flood_beyond_a_pass_is_dropped_with_its_count(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime_logs, "MAX_PASS_BYTES", 1000)
    raw = tmp_path / "dep_1.log"
    raw.write_bytes(b"".join(f"line {i:05}\n".encode() for i in range(1000)))  # 11 bytes each
    logs = RuntimeLogs(tmp_path)
    logs.unfollow("dep_1")
    logs.note("dep_1", "stopped", raw)

    found = logs.read("dep_1", 0, 10**6)
    assert found[0] == {**found[0], "phase": "runtime", "message": "[910 lines dropped]"}
    kept = [line["message"] for line in found[1:-1]]
    assert kept == [f"line {i:05}" for i in range(910, 1000)]
    assert found[-1]["message"] == "stopped"


def test_old_lines_expire_past_the_hard_cap_and_the_newest_stay(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime_logs, "KEEP_LINES", 10)
    monkeypatch.setattr(runtime_logs, "HARD_CAP", 50)
    logs = RuntimeLogs(tmp_path)
    for i in range(200):
        logs.note("dep_1", f"line {i}", tmp_path / "none.log")

    found = logs.read("dep_1", 0, 10**6)
    assert 50 <= len(found) <= 60
    assert found[-1] == {**found[-1], "seq": 200, "message": "line 199"}
    assert [line["seq"] for line in found] == list(range(201 - len(found), 201))


def test_lines_older_than_the_retention_expire_below_the_hard_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime_logs, "KEEP_LINES", 10)
    old, new = "2020-01-01T00:00:00Z", runtime_logs.now_iso()
    logs_dir = tmp_path / "runtime-logs"
    logs_dir.mkdir()
    # A long log of a deployment: 30 lines of years ago, then 5 of today.
    lines = [f"{seq}\t{old if seq <= 30 else new}\tapp\t0\tline {seq}\n" for seq in range(1, 36)]
    (logs_dir / "dep_1.tsv").write_text("".join(lines))
    # A short old one, and a long recent one: nothing to expire in either.
    (logs_dir / "dep_2.tsv").write_text("".join(f"{s}\t{old}\tapp\t0\tx\n" for s in range(1, 6)))
    (logs_dir / "dep_3.tsv").write_text("".join(f"{s}\t{new}\tapp\t0\tx\n" for s in range(1, 41)))
    logs = RuntimeLogs(tmp_path)

    logs.expire()

    found = logs.read("dep_1", 0, 10**6)
    # The last 10 stay whatever their age; the older ones are gone.
    assert [line["seq"] for line in found] == list(range(26, 36))
    assert len(logs.read("dep_2", 0, 10**6)) == 5
    assert len(logs.read("dep_3", 0, 10**6)) == 40
    # Numbering goes on after the expiry.
    logs.note("dep_1", "after the expiry", tmp_path / "none.log")
    assert logs.read("dep_1", 35, 10) == [
        {**logs.read("dep_1", 35, 10)[0], "seq": 36, "message": "after the expiry"}
    ]


def test_the_copier_expires_old_lines_of_logs_it_does_not_follow(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime_logs, "KEEP_LINES", 1)
    logs_dir = tmp_path / "runtime-logs"
    logs_dir.mkdir()
    old = "".join(f"{s}\t2020-01-01T00:00:00Z\tapp\t0\tx\n" for s in range(1, 4))
    (logs_dir / "dep_stopped.tsv").write_text(old)
    raw = tmp_path / "dep_1.log"
    raw.write_bytes(b"hello\n")
    logs = RuntimeLogs(tmp_path)
    logs.follow("dep_1", raw)  # the copier starts, and expires on its first pass

    deadline = time.monotonic() + 10
    while len(logs.read("dep_stopped", 0, 100)) != 1:
        assert time.monotonic() < deadline, logs.read("dep_stopped", 0, 100)
        time.sleep(0.05)
    assert logs.read("dep_stopped", 0, 100)[0]["seq"] == 3
