"""LocalProcessRuntime with real processes: the examples started, served, health-checked and
stopped, and apps that misbehave (unhealthy, slow, exiting, ignoring SIGTERM)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from chalicelib.host import sandbox
from chalicelib.runtimes.local import DeployFailed, LocalProcessRuntime

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
INHERITABLE = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYENV_ROOT"}


@dataclass
class Plan:
    runtime: str
    start_command: str | None = None
    output_directory: str | None = None
    port: int | None = None


@pytest.fixture
def runtime(tmp_path):
    runtime = LocalProcessRuntime(tmp_path / "state", ready_timeout_s=10, stop_grace_s=2)
    yield runtime
    runtime.stop_all()


APP_TEMPLATE = """\
import json, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
{routes}


{before_serving}
server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
print("ready", flush=True)
server.serve_forever()
"""


def write_app(directory: Path, routes: str, before_serving: str = "") -> Path:
    """A stdlib HTTP app in directory/app.py whose GET handler body is `routes`."""
    directory.mkdir(parents=True, exist_ok=True)
    body = textwrap.indent(textwrap.dedent(routes).strip(), " " * 8)
    (directory / "app.py").write_text(
        APP_TEMPLATE.format(routes=body, before_serving=before_serving)
    )
    return directory


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def gone(pid: int) -> bool:
    """The process no longer runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def wait_until(condition, timeout_s: float = 5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_python_example_serves_its_version_and_passes_its_health_check(runtime):
    lines = []
    app = runtime.start(
        "dep_py1",
        "prj_1",
        EXAMPLES / "python-app",
        Plan("python", "python app.py"),
        {"APP_VERSION": "v1.2.3"},
        on_log=lambda phase, line: lines.append((phase, line)),
    )

    assert app.url == f"http://127.0.0.1:{app.port}"
    status, page = get(app.url + "/")
    assert status == 200
    assert '<code id="version">v1.2.3</code>' in page
    assert runtime.health_check("dep_py1", "/health", 2) == (True, "GET /health answered 200")
    assert runtime.is_running("dep_py1")
    assert wait_until(
        lambda: ("deploy", f"python-app v1.2.3 listening on port {app.port}") in lines
    )
    log = runtime.log_path("dep_py1").read_text()
    assert "listening on port" in log
    # The readiness probe sent the app no request: its log holds only the test's two.
    assert [line for line in log.splitlines() if "HTTP/1." in line] == [
        line for line in log.splitlines() if '"GET / HTTP/1.1" 200' in line or "/health" in line
    ]
    assert len([line for line in log.splitlines() if "HTTP/1." in line]) == 2


def test_static_site_is_served_from_its_output_directory(runtime, tmp_path):
    site = tmp_path / "artifact"
    (site / "dist").mkdir(parents=True)
    (site / "dist" / "index.html").write_text("<h1>built site</h1>")
    (site / "secret.txt").write_text("not part of the site")

    app = runtime.start("dep_st1", "prj_1", site, Plan("static", output_directory="dist"), {})

    assert get(app.url + "/") == (200, "<h1>built site</h1>")
    assert get(app.url + "/secret.txt")[0] == 404
    assert get(app.url + "/../secret.txt")[0] == 404
    assert runtime.health_check("dep_st1", "/", 2)[0]


def test_static_example_is_served(runtime):
    app = runtime.start("dep_st2", "prj_1", EXAMPLES / "static-site", Plan("static"), {})

    status, page = get(app.url + "/about/")
    assert status == 200 and "<h1>About</h1>" in page
    status, page = get(app.url + "/missing")
    assert status == 404 and "Nothing here" in page


@pytest.mark.parametrize("output_directory", ["../", "no-such-dir"])
def test_static_output_directory_must_exist_inside_the_app(runtime, tmp_path, output_directory):
    (tmp_path / "site").mkdir()
    with pytest.raises(DeployFailed, match="output directory"):
        runtime.start(
            "dep_st3",
            "prj_1",
            tmp_path / "site",
            Plan("static", output_directory=output_directory),
            {},
        )
    assert not runtime.is_running("dep_st3")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_example_serves_its_version(runtime):
    app = runtime.start(
        "dep_node1",
        "prj_1",
        EXAMPLES / "node-app",
        Plan("node", "npm start"),
        {"APP_VERSION": "n7"},
    )

    status, page = get(app.url + "/")
    assert status == 200 and '<code id="version">n7</code>' in page
    assert runtime.health_check("dep_node1", "/health", 2)[0]


def test_app_gets_port_env_and_its_dependencies_but_no_shipyard_credentials(
    runtime, tmp_path, monkeypatch
):
    # Given the parent holds credentials and the artifact carries installed python packages
    monkeypatch.setenv("SHIPYARD_API_KEY", "sk_live_parent_secret")
    app_dir = write_app(
        tmp_path / "app",
        """
        import greeting
        body = json.dumps({"env": dict(os.environ), "cwd": os.getcwd(), "greeting": greeting.TEXT})
        self.reply(200, body.encode())
        """,
    )
    (app_dir / ".deps").mkdir()
    (app_dir / ".deps" / "greeting.py").write_text("TEXT = 'hi from a dependency'\n")

    # When it starts
    app = runtime.start(
        "dep_env1", "prj_1", app_dir, Plan("python", "python app.py"), {"DATABASE_URL": "x://y"}
    )

    # Then it sees its port, its env and its packages, and none of Shipyard's secrets
    seen = json.loads(get(app.url + "/")[1])
    env = seen["env"]
    assert env["PORT"] == str(app.port)
    assert env["DATABASE_URL"] == "x://y"
    assert env["SHIPYARD_DEPLOYMENT_ID"] == "dep_env1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert seen["greeting"] == "hi from a dependency"
    assert Path(seen["cwd"]).resolve() == app_dir.resolve()
    assert not [name for name in env if name.startswith("AWS_")]
    assert [name for name in env if name.startswith("SHIPYARD_")] == ["SHIPYARD_DEPLOYMENT_ID"]
    ours = {"PWD", "SHLVL", "_", "PYTHONUNBUFFERED"}
    inherited = {name for name in env if name in os.environ} - ours
    assert all(name in INHERITABLE or name.startswith("LC_") for name in inherited), inherited


def test_unhealthy_app_fails_its_health_check(runtime, tmp_path):
    app_dir = write_app(
        tmp_path / "app",
        """
        if self.path == "/health":
            self.reply(500, b"database unreachable")
        elif self.path == "/moved":
            self.reply(302, headers=[("Location", "/nowhere")])
        else:
            self.reply(404)
        """,
    )
    runtime.start("dep_bad1", "prj_1", app_dir, Plan("python", "python app.py"), {})

    assert runtime.health_check("dep_bad1", "/health", 2) == (False, "GET /health answered 500")
    # A redirect is healthy and is not followed (its target would answer 404).
    assert runtime.health_check("dep_bad1", "/moved", 2) == (True, "GET /moved answered 302")
    assert runtime.health_check("dep_bad1", "/other", 2) == (False, "GET /other answered 404")


def test_health_check_gives_up_at_its_timeout(runtime, tmp_path):
    app_dir = write_app(tmp_path / "app", "time.sleep(5); self.reply(200)")
    runtime.start("dep_slow1", "prj_1", app_dir, Plan("python", "python app.py"), {})

    started = time.monotonic()
    ok, detail = runtime.health_check("dep_slow1", "/health", 0.3)

    assert not ok and "timed out" in detail
    assert time.monotonic() - started < 3


def test_app_that_exits_at_start_raises_deploy_failed_with_its_output(runtime, tmp_path):
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "app.py").write_text("import sys\nprint('missing DATABASE_URL')\nsys.exit(3)\n")
    lines = []

    with pytest.raises(DeployFailed) as failure:
        runtime.start(
            "dep_exit1",
            "prj_1",
            app_dir,
            Plan("python", "python app.py"),
            {},
            on_log=lambda phase, line: lines.append(line),
        )

    assert "exited with code 3 at start" in str(failure.value)
    assert "missing DATABASE_URL" in str(failure.value)
    assert "missing DATABASE_URL" in lines
    assert not runtime.is_running("dep_exit1")
    assert not (runtime.state_dir / "dep_exit1.json").exists()
    assert runtime.health_check("dep_exit1", "/", 1) == (False, "the app is not running")


def test_long_output_lines_reach_on_log_in_pieces(runtime, tmp_path):
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "app.py").write_text("print('x' * 140000)\nprint('done')\nraise SystemExit(1)\n")
    lines = []

    with pytest.raises(DeployFailed):
        runtime.start(
            "dep_long1",
            "prj_1",
            app_dir,
            Plan("python", "python app.py"),
            {},
            on_log=lambda phase, line: lines.append(line),
        )

    assert [len(line) for line in lines] == [65536, 65536, 140000 - 2 * 65536, 4]
    assert "".join(lines[:3]) == "x" * 140000 and lines[3] == "done"


def test_app_that_dies_after_start_is_unhealthy(runtime, tmp_path):
    app_dir = write_app(tmp_path / "app", "self.reply(200); self.wfile.flush(); os._exit(4)")
    first = runtime.start("dep_die1", "prj_1", app_dir, Plan("python", "python app.py"), {})

    assert runtime.health_check("dep_die1", "/", 2)[0]
    assert wait_until(lambda: not runtime.is_running("dep_die1"))
    assert runtime.health_check("dep_die1", "/", 2) == (
        False,
        "the app is not running: it exited with code 4",
    )
    # Starting it again (a restart of the local stack does this) starts a new process
    again = runtime.start("dep_die1", "prj_1", app_dir, Plan("python", "python app.py"), {})
    assert again.pid != first.pid and runtime.is_running("dep_die1")


def test_plan_errors_are_deploy_failures(runtime, tmp_path):
    with pytest.raises(DeployFailed, match="no start command"):
        runtime.start("dep_p1", "prj_1", tmp_path, Plan("python"), {})
    with pytest.raises(DeployFailed, match="unknown runtime"):
        runtime.start("dep_p2", "prj_1", tmp_path, Plan("ruby", "ruby app.rb"), {})
    with pytest.raises(DeployFailed, match="cannot be started"):
        runtime.start("dep_p3", "prj_1", tmp_path / "missing", Plan("python", "python x.py"), {})
    with pytest.raises(ValueError):
        runtime.start("../escape", "prj_1", tmp_path, Plan("python", "python x.py"), {})


def test_fixed_port_already_taken_is_a_deploy_failure_without_a_sandbox(
    runtime, tmp_path, monkeypatch
):
    # Given a machine without a sandbox, where running unsandboxed is allowed
    monkeypatch.setattr(sandbox, "missing", lambda: "no bwrap (this test)")
    monkeypatch.setenv("SHIPYARD_ALLOW_UNSANDBOXED", "1")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app_dir = write_app(tmp_path / "app", "self.reply(200)")
        with pytest.raises(DeployFailed, match=f"port {port}"):
            runtime.start(
                "dep_port1", "prj_1", app_dir, Plan("python", "python app.py", port=port), {}
            )


def test_a_fixed_port_is_the_apps_own_in_its_sandbox(runtime, tmp_path):
    # Given two deployments whose apps both listen on the same fixed port
    apps = []
    for name in ("dep_fix1", "dep_fix2"):
        app_dir = write_app(
            tmp_path / name, "self.reply(200, os.environ['SHIPYARD_DEPLOYMENT_ID'].encode())"
        )
        apps.append(
            runtime.start(name, "prj_1", app_dir, Plan("python", "python app.py", 8123), {})
        )

    # Then each runs in its own network, at a URL of its own
    assert apps[0].port != apps[1].port
    for name, app in zip(("dep_fix1", "dep_fix2"), apps, strict=True):
        assert get(app.url)[1] == name


def sandbox_processes(deployment_id: str) -> list[int]:
    """The pids of the machine that run as the deployment's sandbox user."""
    uid = sandbox.uid_for(deployment_id)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nUid:\t{uid}\t" in status and not gone(int(entry.name)):
                found.append(int(entry.name))
    return found


def test_stop_kills_the_whole_process_group_and_frees_the_port(runtime, tmp_path):
    # Given an app whose shell also started a background child
    app_dir = write_app(tmp_path / "app", "self.reply(200)")
    command = "sleep 300 & exec python app.py"
    app = runtime.start("dep_grp1", "prj_1", app_dir, Plan("python", command), {})
    assert len(sandbox_processes("dep_grp1")) >= 2 and not gone(app.pid)

    # When it is stopped
    runtime.stop("dep_grp1")

    # Then the app and its child are gone, the port is free, and stopping again is harmless
    assert wait_until(lambda: not sandbox_processes("dep_grp1") and gone(app.pid))
    assert refuses(app.port)
    assert not runtime.is_running("dep_grp1")
    runtime.stop("dep_grp1")
    runtime.stop("dep_never_started")


def test_stop_kills_an_app_that_ignores_sigterm(tmp_path):
    runtime = LocalProcessRuntime(tmp_path / "state", stop_grace_s=0.3)
    app_dir = write_app(
        tmp_path / "app",
        "self.reply(200)",
        before_serving="import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)",
    )
    app = runtime.start("dep_stub1", "prj_1", app_dir, Plan("python", "exec python app.py"), {})

    runtime.stop("dep_stub1")

    assert gone(app.pid)
    assert refuses(app.port)


def test_starting_a_running_deployment_again_returns_the_same_process(runtime, tmp_path):
    app_dir = write_app(tmp_path / "app", "self.reply(200)")
    first = runtime.start("dep_twice", "prj_1", app_dir, Plan("python", "python app.py"), {})
    second = runtime.start("dep_twice", "prj_1", app_dir, Plan("python", "python app.py"), {})

    assert second == first


def test_another_runtime_over_the_same_state_dir_finds_and_stops_the_app(runtime, tmp_path):
    # Given an app started by one runtime (one process of the local stack)
    app_dir = write_app(tmp_path / "app", "self.reply(200)")
    app = runtime.start("dep_shared", "prj_9", app_dir, Plan("python", "python app.py"), {})
    state = json.loads((runtime.state_dir / "dep_shared.json").read_text())
    assert state["pid"] == app.pid and state["port"] == app.port and state["project_id"] == "prj_9"

    # When another runtime over the same state_dir (after a restart) looks at it
    restarted = LocalProcessRuntime(runtime.state_dir)

    # Then it sees it running, can health-check it, follow its new log lines and stop it
    assert restarted.is_running("dep_shared")
    assert restarted.health_check("dep_shared", "/", 2)[0]
    lines = []
    plan = Plan("python", "python app.py")
    again = restarted.start(
        "dep_shared", "prj_9", app_dir, plan, {}, on_log=lambda _, line: lines.append(line)
    )
    assert again == app
    get(app.url + "/after-restart")
    assert wait_until(lambda: any("GET /after-restart" in line for line in lines))
    restarted.stop("dep_shared")
    assert wait_until(lambda: gone(app.pid))
    assert refuses(app.port)
    assert not runtime.is_running("dep_shared")
    assert not restarted.is_running("dep_shared")


def test_stale_state_never_signals_a_process_that_is_not_the_app(runtime, tmp_path):
    # Given a state file whose pid now belongs to an unrelated process (a reused pid)
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        state = {
            "version": 1,
            "deployment_id": "dep_stale",
            "project_id": "prj_1",
            "pid": stranger.pid,
            "pgid": stranger.pid,
            "start_ticks": 1,
            "port": 1,
            "url": "http://127.0.0.1:1",
        }
        (runtime.state_dir / "dep_stale.json").write_text(json.dumps(state))

        # Then the deployment is not running, and stopping it leaves the stranger alone
        assert not runtime.is_running("dep_stale")
        runtime.stop("dep_stale")
        assert stranger.poll() is None
        assert not (runtime.state_dir / "dep_stale.json").exists()
    finally:
        os.kill(stranger.pid, signal.SIGKILL)
        stranger.wait()


def test_stop_all_stops_every_known_deployment(runtime, tmp_path):
    app_dir = write_app(tmp_path / "app", "self.reply(200)")
    apps = [
        runtime.start(f"dep_all{n}", "prj_1", app_dir, Plan("python", "python app.py"), {})
        for n in range(2)
    ]

    LocalProcessRuntime(runtime.state_dir).stop_all()

    assert wait_until(lambda: all(gone(app.pid) for app in apps))
    assert not any(runtime.is_running(app.deployment_id) for app in apps)
