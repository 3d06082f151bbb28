"""The sandbox of builds and apps on the local stack (bubblewrap), attacked the way a
hostile tenant would: reading Shipyard's state and other deployments' files, /proc/1,
connecting to moto and the API, escaping through a symlink, writing outside its
directory, a fork bomb and an 8 GiB allocation (with small limits, so the machine never
notices)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from chalicelib.builders.local import LocalBuilder
from chalicelib.core.settings import get_settings
from chalicelib.host import sandbox
from chalicelib.host.egress import EgressProxy
from chalicelib.runtimes.local import DeployFailed, LocalProcessRuntime
from tests.integration.test_local_builder import Logs, make_job, upload
from tests.integration.test_local_runtime import Plan, get, refuses, wait_until

PROBE_APP = """\
import json, os, resource, socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def attempt(action):
    try:
        return "allowed: " + str(action())[:200]
    except Exception as error:
        return "refused: " + type(error).__name__

def connect(port):
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    return "connected"

def report():
    targets = json.load(open("targets.json"))
    return {
        "state": attempt(lambda: open(targets["key_file"]).read()),
        "state_listing": attempt(lambda: os.listdir(targets["state_dir"])),
        "other_artifact": attempt(lambda: open(targets["other_artifact"]).read()),
        "symlink": attempt(lambda: open("state-link/first-workspace.json").read()),
        "proc1": attempt(lambda: open("/proc/1/environ", "rb").read()),
        "moto": attempt(lambda: connect(targets["moto_port"])),
        "api": attempt(lambda: connect(targets["api_port"])),
        "write_own_dir": attempt(lambda: open("written", "w").write("x")),
        "tmp": attempt(lambda: open("/tmp/scratch", "w").write("ok")),
        "open_files": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "uid": os.getuid(),
    }

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(report()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


@pytest.fixture
def listeners():
    """Two ports of 127.0.0.1 that accept anyone: stand-ins for moto's and the API's."""
    opened = []
    for _ in range(2):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        opened.append(server)
    yield [server.getsockname()[1] for server in opened]
    for server in opened:
        server.close()


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A state directory as the local stack keeps it: the first key, another deployment's
    artifact."""
    state_dir = tmp_path / "state"
    monkeypatch.setenv("SHIPYARD_STATE_DIR", str(state_dir))
    (state_dir / "artifacts" / "dep_other").mkdir(parents=True)
    (state_dir / "first-workspace.json").write_text('{"api_key": "sk_live_topsecret"}')
    (state_dir / "artifacts" / "dep_other" / "secret.txt").write_text("other tenant's file")
    return state_dir


@pytest.fixture
def runtime(state):
    runtime = LocalProcessRuntime(state / "apps", ready_timeout_s=3, stop_grace_s=1)
    yield runtime
    runtime.stop_all()


def sandbox_pids(deployment_id: str) -> list[int]:
    uid = sandbox.uid_for(deployment_id)
    found = []
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if f"\nUid:\t{uid}\t" in status and "\nState:\tZ" not in status:
            found.append(int(entry.name))
    return found


def test_an_app_sees_nothing_but_its_own_files_and_reaches_nothing_of_the_machine(
    runtime, state, listeners
):
    # Given an app that tries everything a hostile tenant would
    app_dir = state / "artifacts" / "dep_probe"
    app_dir.mkdir()
    (app_dir / "app.py").write_text(PROBE_APP)
    (app_dir / "state-link").symlink_to(state)
    targets = {
        "key_file": str(state / "first-workspace.json"),
        "state_dir": str(state),
        "other_artifact": str(state / "artifacts" / "dep_other" / "secret.txt"),
        "moto_port": listeners[0],
        "api_port": listeners[1],
    }
    (app_dir / "targets.json").write_text(json.dumps(targets))

    # When it runs and is asked what it could do
    app = runtime.start("dep_probe", "prj_1", app_dir, Plan("python", "python app.py"), {})
    status, body = get(app.url)

    # Then it served HTTP at its URL, and everything outside its own files was refused
    assert status == 200
    report = json.loads(body)
    for attempt in ("state", "other_artifact", "symlink", "moto", "api"):
        assert report[attempt].startswith("refused"), (attempt, report[attempt])
    # The state directory is not there at all: only the path down to its own artifact
    assert report["state_listing"] == "allowed: ['artifacts']"
    # /proc/1 is the sandbox's own init, not the machine's (nor Shipyard's environment)
    assert report["proc1"].startswith("refused") or "SHIPYARD" not in report["proc1"]
    # Its artifact is read-only; its /tmp is private and writable
    assert report["write_own_dir"].startswith("refused")
    assert report["tmp"] == "allowed: 2" and not Path("/tmp/scratch").exists()
    assert runtime.socket_path("dep_probe").is_socket()
    # It runs as its own user, with the open-files limit
    assert report["uid"] == sandbox.uid_for("dep_probe") and report["uid"] != 0
    assert report["open_files"] == get_settings().sandbox_open_files


def test_an_app_that_allocates_8_gib_fails_alone(runtime, state, monkeypatch):
    monkeypatch.setenv("SHIPYARD_SANDBOX_MEMORY_MB", "256")
    get_settings.cache_clear()
    app_dir = state / "artifacts" / "dep_hog"
    app_dir.mkdir()
    (app_dir / "app.py").write_text("hog = bytearray(8 << 30)\nprint('allocated')\n")

    with pytest.raises(DeployFailed, match="MemoryError"):
        runtime.start("dep_hog", "prj_1", app_dir, Plan("python", "python app.py"), {})
    assert not sandbox_pids("dep_hog")


def test_a_fork_bomb_is_held_to_the_process_limit_and_stopped_whole(runtime, state, monkeypatch):
    # Given a process limit of 24 for each sandbox
    monkeypatch.setenv("SHIPYARD_SANDBOX_PROCESSES", "24")
    get_settings.cache_clear()
    app_dir = state / "artifacts" / "dep_bomb"
    app_dir.mkdir()
    bomb = "bomb() { bomb | bomb & }; bomb; sleep 30"

    peak = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak.append(len(sandbox_pids("dep_bomb")))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()

    # When an app forks without end (it fails at start, or never listens), and is stopped
    refused_at_start = False
    try:
        runtime.start("dep_bomb", "prj_1", app_dir, Plan("python", bomb), {})
        time.sleep(1)
    except DeployFailed as failure:
        assert "Cannot fork" in str(failure)
        refused_at_start = True
    finally:
        runtime.stop("dep_bomb")
        sampling.set()
        sampler.join()

    # Then its processes never passed the limit (the sampler saw them, unless the limit
    # stopped the bomb before its first look), none is left, and the machine still forks
    assert max(peak) <= 24
    assert max(peak) > 0 or refused_at_start
    assert wait_until(lambda: not sandbox_pids("dep_bomb"))
    assert subprocess.run(["true"], check=False).returncode == 0


def test_a_build_can_neither_write_outside_its_directory_nor_reach_the_machine(
    aws, tmp_path, state, listeners
):
    # Given a build command that writes everywhere and connects to moto's and the API's ports
    other = state / "artifacts" / "dep_other" / "secret.txt"
    connect = (
        'python3 -c "import socket,sys;'
        " socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)\""
    )
    through_proxy = (
        'python3 -c "import http.client,sys;'
        " c = http.client.HTTPConnection('127.0.0.1', 3128);"
        " c.request('CONNECT', '127.0.0.1:' + sys.argv[1]);"
        " print('proxy', c.getresponse().status)\""
    )
    command = "; ".join(
        [
            f"echo pwned > {state}/pwned && echo wrote-state",
            "echo pwned > /usr/pwned && echo wrote-usr",
            "echo pwned > ../../escaped && echo wrote-parent",
            f"cat {other} && echo read-other",
            f"{connect} {listeners[0]} && echo reached-moto",
            f"{connect} {listeners[1]} && echo reached-api",
            f"{through_proxy} {listeners[0]}",
            "echo own > own.txt && echo wrote-own",
        ]
    )
    builder = LocalBuilder(tmp_path / "builds")
    logs = Logs()

    # When it builds
    outcome = builder.build(
        make_job(upload({"index.html": ""}), build={"build_command": command}),
        logs,
        threading.Event(),
    )

    # Then only its own directory took the write, and nothing of the machine answered
    assert outcome.ok, logs.lines
    output = logs.of("build")
    assert "wrote-own" in output
    for leak in ("wrote-state", "wrote-usr", "wrote-parent", "read-other", "reached-moto"):
        assert leak not in output
    assert "reached-api" not in output and "proxy 403" in output
    assert not (state / "pwned").exists() and not Path("/usr/pwned").exists()
    assert not any(path.name == "escaped" for path in tmp_path.rglob("escaped"))


def test_the_egress_proxy_refuses_this_machine_and_tunnels_elsewhere(tmp_path, listeners):
    # Given the proxy of a build, and (standing in for a registry) a server it may reach
    refusing = EgressProxy(tmp_path / "refusing.sock")
    allowing = EgressProxy(tmp_path / "allowing.sock", allowed=lambda address: True)
    try:
        for proxy, expected in ((refusing, b"403"), (allowing, b"200")):
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(str(proxy.socket_path))
                client.sendall(f"CONNECT 127.0.0.1:{listeners[0]} HTTP/1.1\r\n\r\n".encode())
                assert client.recv(100).split()[1] == expected
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(refusing.socket_path))
            client.sendall(b"GET http://example.com/ HTTP/1.1\r\n\r\n")
            assert client.recv(100).split()[1] == b"405"
    finally:
        refusing.close()
        allowing.close()
    assert refuses(listeners[0]) is False


def test_without_a_sandbox_the_stack_refuses_to_start_unless_allowed(tmp_path, monkeypatch, capsys):
    from chalicelib.local import stack

    # Given a machine where no sandbox can be had (and what the stack would set, undone after)
    monkeypatch.setenv("SHIPYARD_STATE_DIR", str(tmp_path / "state"))
    for name in ("SHIPYARD_PUBLIC_URL", "MOTO_PORT", "AWS_ENDPOINT_URL"):
        monkeypatch.setenv(name, "unused")
    monkeypatch.setenv("SHIPYARD_ALLOW_PRIVATE_TARGETS", "false")
    monkeypatch.setattr(sandbox, "missing", lambda: "`bwrap` is not installed (this test)")

    # Then the stack refuses to start, saying why and what allows it
    assert stack.main(["--port", "1"]) == 1
    error = capsys.readouterr().err
    assert "bwrap" in error and "SHIPYARD_ALLOW_UNSANDBOXED=1" in error

    # and with the setting, builds and apps are allowed to run unsandboxed
    monkeypatch.setenv("SHIPYARD_ALLOW_UNSANDBOXED", "1")
    get_settings.cache_clear()
    assert sandbox.limits() is None and sandbox.state() == "off"


def test_the_state_directory_and_its_keys_are_the_owners_only(aws, tmp_path, monkeypatch):
    from chalicelib.local import env, stack

    state_dir = tmp_path / "state"
    monkeypatch.setenv("SHIPYARD_STATE_DIR", str(state_dir))
    state_dir.mkdir(mode=0o755)

    env.cursor_secret()
    stack.first_workspace()

    assert state_dir.stat().st_mode & 0o777 == 0o700
    assert (state_dir / "cursor-secret").stat().st_mode & 0o777 == 0o600
    assert (state_dir / "first-workspace.json").stat().st_mode & 0o777 == 0o600
