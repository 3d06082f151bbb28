"""LocalBuilder: real subprocess builds of small source trees, packed here, on moto's S3."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

from chalicelib.archive.artifacts import download_and_unpack
from chalicelib.aws.clients import client
from chalicelib.builders.local import LocalBuilder
from chalicelib.core.settings import get_settings
from chalicelib.host import sandbox
from chalicelib.ports import BuildJob

pytestmark = pytest.mark.usefixtures("aws")


def upload(tree: dict[str, str | bytes], key: str = "uploads/prj_1/upl_1.tar.gz") -> str:
    """Pack `tree` (path -> content; a path ending in '*' is executable) and put it in S3."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path, content in tree.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path.rstrip("*"))
            info.size = len(data)
            info.mode = 0o755 if path.endswith("*") else 0o644
            tar.addfile(info, io.BytesIO(data))
    client("s3").put_object(Bucket=get_settings().bucket, Key=key, Body=raw.getvalue())
    return key


def make_job(key: str, runtime="auto", build=None, run=None, env=None, timeout_s=60) -> BuildJob:
    return BuildJob(
        deployment_id="dep_1",
        project_id="prj_1",
        workspace_id="ws_1",
        source_key=key,
        project_runtime=runtime,
        build=build or {},
        run=run or {},
        env=env or {},
        timeout_s=timeout_s,
    )


class Logs:
    """An on_log callback that records (phase, line) and when each line came."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.times: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, phase: str, line: str) -> None:
        with self.lock:
            self.lines.append((phase, line))
            self.times.append(time.monotonic())

    def of(self, phase: str) -> list[str]:
        with self.lock:
            return [line for p, line in self.lines if p == phase]

    def wait_for(self, phase: str, text: str, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.of(phase):
            assert time.monotonic() < deadline, f"no {phase} line {text!r} in {self.lines}"
            time.sleep(0.02)


@pytest.fixture
def builder(tmp_path):
    return LocalBuilder(tmp_path / "builds")


def unpacked(key: str, dest: Path) -> Path:
    download_and_unpack(key, dest)
    return dest


def test_static_site_with_a_build_command(builder, tmp_path):
    # Given a static project whose build writes its pages into public/
    script = (
        "mkdir -p public\n"
        'for p in a b; do echo "<h1>$p</h1>" > public/$p.html; done\n'
        "echo built $(ls public | wc -l) pages\n"
    )
    key = upload({"build.sh*": script})
    job = make_job(
        key, "static", build={"build_command": "./build.sh", "output_directory": "public"}
    )
    logs = Logs()

    # When it is built
    outcome = builder.build(job, logs, threading.Event())

    # Then the build output streamed, and the artifact holds public/ and nothing else
    assert outcome.ok, outcome
    assert (outcome.error_code, outcome.error_message) == (None, None)
    assert outcome.plan.runtime == "static"
    assert outcome.plan.output_directory == "public"
    assert outcome.artifact_key == "artifacts/prj_1/dep_1/artifact.tar.gz"
    assert "built 2 pages" in logs.of("build")
    assert any("runtime static" in line for line in logs.of("system"))
    artifact = unpacked(outcome.artifact_key, tmp_path / "artifact")
    assert (artifact / "public" / "a.html").read_text() == "<h1>a</h1>\n"
    assert sorted(p.name for p in artifact.iterdir()) == ["public"]
    # And the temp dir is gone
    assert list((tmp_path / "builds").iterdir()) == []


def test_node_app_with_an_npm_build_script_and_a_clean_env(builder, tmp_path, monkeypatch):
    # Given this process holds credentials, and a node app whose build script reports
    # the environment it sees
    monkeypatch.setenv("SHIPYARD_SECRET_THING", "do-not-leak")
    assert os.environ["AWS_SECRET_ACCESS_KEY"]
    build_js = """
const fs = require("fs");
fs.mkdirSync("dist", {recursive: true});
fs.writeFileSync("dist/version.txt", "v1");
console.log("greeting=" + process.env.GREETING);
const named = (prefix) => Object.keys(process.env).filter(k => k.startsWith(prefix)).join(",");
console.log("aws=" + named("AWS_"));
console.log("shipyard=" + named("SHIPYARD_"));
console.log("home=" + process.env.HOME);
console.error("a warning on stderr");
"""
    package = {"name": "app", "scripts": {"build": "node build.js", "start": "node server.js"}}
    key = upload(
        {"package.json": json.dumps(package), "build.js": build_js, "server.js": "// server\n"}
    )
    logs = Logs()

    # When it is built with the project's env
    outcome = builder.build(make_job(key, env={"GREETING": "hi"}), logs, threading.Event())

    # Then npm ran the script (no install: nothing to install) in a clean environment
    assert outcome.ok, outcome
    plan = outcome.plan
    assert (plan.runtime, plan.install_command, plan.build_command) == (
        "node",
        None,
        "npm run build",
    )
    assert plan.start_command == "npm start"
    output = logs.of("build")
    assert "greeting=hi" in output
    assert "aws=" in output
    assert "shipyard=" in output
    assert "a warning on stderr" in output
    home = next(line for line in output if line.startswith("home="))
    assert home.startswith(f"home={tmp_path / 'builds'}")
    artifact = unpacked(outcome.artifact_key, tmp_path / "artifact")
    assert (artifact / "dist" / "version.txt").read_text() == "v1"
    assert (artifact / "server.js").exists()


def test_a_failing_build_reports_the_command_and_keeps_its_output(builder):
    key = upload({"index.html": "<h1>hi</h1>"})
    job = make_job(
        key,
        build={"build_command": "echo compiling; echo 'error: boom' >&2; echo never-mind; exit 3"},
    )
    logs = Logs()

    outcome = builder.build(job, logs, threading.Event())

    assert not outcome.ok
    assert outcome.error_code == "build_failed"
    assert "exited with code 3" in outcome.error_message
    assert "echo compiling" in outcome.error_message
    assert outcome.artifact_key is None
    assert logs.of("build") == ["compiling", "error: boom", "never-mind"]
    assert logs.of("system")[-1] == outcome.error_message


def test_a_build_that_runs_too_long_times_out(builder, tmp_path):
    key = upload({"index.html": ""})
    job = make_job(key, build={"build_command": "echo start; sleep 30"}, timeout_s=1)
    logs = Logs()

    started = time.monotonic()
    outcome = builder.build(job, logs, threading.Event())

    assert time.monotonic() - started < 10
    assert outcome.error_code == "timed_out"
    assert "1 s" in outcome.error_message
    assert logs.of("build") == ["start"]
    assert list((tmp_path / "builds").iterdir()) == []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def sandbox_pids(deployment_id: str, command: str) -> list[int]:
    """The machine's pids of `command` run by the deployment's sandbox user (inside, pids
    are the sandbox's own)."""
    uid = sandbox.uid_for(deployment_id)
    found = []
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text() if entry.name.isdigit() else ""
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"\nUid:\t{uid}\t" in status and cmdline.startswith(command) and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def test_cancel_during_a_long_build_returns_promptly_and_kills_the_group(builder):
    # Given a build that starts a long child and streams a line first
    key = upload({"index.html": ""})
    job = make_job(key, build={"build_command": "sleep 30 & echo child=$!; wait"})
    # Its own sandbox user: another test's `sleep 30` (another worker) is not this one's.
    job.deployment_id = "dep_cancel"
    logs = Logs()
    cancel = threading.Event()
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(outcome=builder.build(job, logs, cancel))
    )
    thread.start()

    # When the line arrives (streamed while the build still runs) and the build is canceled
    deadline = time.monotonic() + 20
    while not any(line.startswith("child=") for line in logs.of("build")):
        assert time.monotonic() < deadline and thread.is_alive(), logs.lines
        time.sleep(0.02)
    [child] = sandbox_pids("dep_cancel", "sleep 30")
    canceled_at = time.monotonic()
    cancel.set()
    thread.join(10)

    # Then it returns within a few seconds, and the sleeping child is gone too
    assert not thread.is_alive()
    assert time.monotonic() - canceled_at < 5
    assert result["outcome"].error_code == "canceled"
    deadline = time.monotonic() + 5
    while _alive(child):
        assert time.monotonic() < deadline, "the build's child survived the cancel"
        time.sleep(0.02)


def test_output_lines_stream_as_they_come(builder):
    key = upload({"index.html": ""})
    job = make_job(key, build={"build_command": "echo first; sleep 1; echo second"})
    logs = Logs()

    assert builder.build(job, logs, threading.Event()).ok

    build_times = [
        t for (phase, _), t in zip(logs.lines, logs.times, strict=True) if phase == "build"
    ]
    assert logs.of("build") == ["first", "second"]
    assert build_times[1] - build_times[0] > 0.5


def test_an_invalid_archive_fails_with_the_rule_in_the_logs(builder):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape.sh")
        tar.addfile(info, io.BytesIO(b""))
    key = "uploads/prj_1/bad.tar.gz"
    client("s3").put_object(Bucket=get_settings().bucket, Key=key, Body=raw.getvalue())
    logs = Logs()

    outcome = builder.build(make_job(key), logs, threading.Event())

    assert outcome.error_code == "invalid_archive"
    assert "parent_traversal" in outcome.error_message
    assert "'..'" in outcome.error_message
    assert any("parent_traversal" in line for line in logs.of("system"))
    assert logs.of("build") == []


def test_not_a_gzip_archive(builder):
    key = "uploads/prj_1/zip.tar.gz"
    client("s3").put_object(Bucket=get_settings().bucket, Key=key, Body=b"PK\x03\x04 zip")
    outcome = builder.build(make_job(key), Logs(), threading.Event())
    assert outcome.error_code == "invalid_archive"
    assert "not_gzip_tar" in outcome.error_message


def test_a_missing_output_directory_is_a_build_failure(builder):
    key = upload({"src/page.md": "# hi"})
    job = make_job(key, "static", build={"build_command": "true", "output_directory": "dist"})
    outcome = builder.build(job, Logs(), threading.Event())
    assert outcome.error_code == "build_failed"
    assert "'dist'" in outcome.error_message


def wheel(name: str, module_source: str) -> bytes:
    """A minimal pure-Python wheel, so pip installs it without any index."""
    raw = io.BytesIO()
    info = f"{name}-1.0.dist-info"
    files = {
        f"{name}/__init__.py": module_source,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(raw, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return raw.getvalue()


def test_python_dependencies_live_in_the_artifact_and_the_start_command_finds_them(
    builder, tmp_path
):
    # Given a python app that needs a (local) package
    key = upload(
        {
            "requirements.txt": "./wheels/greet-1.0-py3-none-any.whl\n",
            "wheels/greet-1.0-py3-none-any.whl": wheel(
                "greet", "def hello():\n    return 'hello from greet'\n"
            ),
            "app.py": "import os, greet\nprint(greet.hello(), os.environ['PORT'])\n",
        }
    )
    logs = Logs()

    # When it is built
    outcome = builder.build(make_job(key), logs, threading.Event())

    # Then the package is in .deps inside the artifact
    assert outcome.ok, "\n".join(m for _, m in logs.lines)
    plan = outcome.plan
    assert plan.runtime == "python"
    assert plan.install_command.endswith("--target .deps -r requirements.txt")
    artifact = unpacked(outcome.artifact_key, tmp_path / "elsewhere" / "artifact")
    assert (artifact / ".deps" / "greet" / "__init__.py").exists()

    # And the plan's start command, run from the unpacked artifact, imports it
    started = subprocess.run(
        ["sh", "-c", plan.start_command],
        cwd=artifact,
        env={"PATH": os.environ["PATH"], "PORT": "4321"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout == "hello from greet 4321\n"


def test_a_detached_process_holding_the_output_does_not_hang_the_build(builder):
    # Given a build that leaves a process in its own session, holding stdout open
    key = upload({"index.html": ""})
    job = make_job(key, build={"build_command": "setsid sleep 30 & echo detached=$!"})
    job.deployment_id = "dep_detached"
    logs = Logs()

    # When it is built
    started = time.monotonic()
    outcome = builder.build(job, logs, threading.Event())

    # Then the build ends shortly after its shell does
    try:
        assert outcome.ok, outcome
        assert time.monotonic() - started < 10
        assert logs.of("build")[0].startswith("detached=")
    finally:
        for detached in sandbox_pids("dep_detached", "sleep 30"):
            os.kill(detached, signal.SIGKILL)
