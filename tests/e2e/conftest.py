"""The real local stack, started as a newcomer would (`python -m chalicelib.local.stack`),
on free ports and a fresh state directory, spoken to over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from chalicelib.host.processes import accepts, free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    url: str
    key: str
    workspace_id: str
    state_dir: Path
    process: subprocess.Popen
    env: dict

    @property
    def api_key(self) -> str:
        return self.key

    def admin(self, *args: str) -> subprocess.CompletedProcess:
        """Run `python -m chalicelib.admin ...` against this stack."""
        return subprocess.run(
            [sys.executable, "-m", "chalicelib.admin", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def request(self, method: str, path: str, body=None, key: str | None = None, headers=None):
        """(status, headers, parsed JSON or text) of one HTTP request."""
        data = json.dumps(body).encode() if body is not None else None
        sent = {"Authorization": f"Bearer {key or self.key}", "Content-Type": "application/json"}
        sent.update(headers or {})
        request = urllib.request.Request(self.url + path, data=data, headers=sent, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, raw, got = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, got = error.code, error.read(), error.headers
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode()
        return status, got, parsed


def start_stack(tmp_path: Path, extra_env: dict | None = None) -> Stack:
    port, moto_port = free_port(), free_port()
    state_dir = tmp_path / "state"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHIPYARD_", "MOTO_"))},
        "SHIPYARD_MOTO_PORT": str(moto_port),
        "SHIPYARD_STATE_DIR": str(state_dir),
        "PYTHONUNBUFFERED": "1",
        # Whatever a test's webhook says, the stack connects out to loopback only.
        "SHIPYARD_OUTBOUND_LOOPBACK_ONLY": "1",
        **(extra_env or {}),
    }
    log = open(tmp_path / "stack.log", "wb")  # noqa: SIM115 - the stack writes to it
    process = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.local.stack", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    first = state_dir / "first-workspace.json"
    while True:
        if process.poll() is not None:
            raise RuntimeError((tmp_path / "stack.log").read_text())
        try:
            with urllib.request.urlopen(url + "/v1/health", timeout=2) as response:
                if response.status == 200 and first.exists():
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_stack(process)
            raise RuntimeError("stack did not start:\n" + (tmp_path / "stack.log").read_text())
        time.sleep(0.2)
    saved = json.loads(first.read_text())
    return Stack(url, saved["api_key"], saved["workspace_id"], state_dir, process, env)


def stop_stack(process: subprocess.Popen) -> int:
    if process.poll() is None:
        stop_process(process, grace_s=30, sig=signal.SIGINT, whole_group=False)
    return process.returncode


@pytest.fixture
def stack(tmp_path):
    running = start_stack(tmp_path)
    yield running
    stop_stack(running.process)


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory):
    """One stack shared by the tests of a module (for tests that don't need a fresh one)."""
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    stop_stack(running.process)


# Short bounded waits on the log stream, so a test sees several reconnects in seconds.
PIPELINE_ENV = {"SHIPYARD_SSE_WAIT_S": "1", "SHIPYARD_SSE_RETRY_MS": "100"}


@pytest.fixture(scope="session")
def cli_stack(tmp_path_factory):
    """One stack, with short stream waits, for the tests that deploy through the CLI and
    follow logs (per xdist worker)."""
    running = start_stack(tmp_path_factory.mktemp("cli-stack"), PIPELINE_ENV)
    yield running
    stop_stack(running.process)


@contextmanager
def external_moto() -> Iterator[int]:
    """A moto server started apart from any stack (as `make moto` does); yields its port."""
    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.local.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "MOTO_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if accepts(port):
                break
            assert time.monotonic() < deadline and moto.poll() is None, "moto did not start"
            time.sleep(0.1)
        yield port
        assert moto.poll() is None, "the moto server stopped"
    finally:
        if moto.poll() is None:
            stop_process(moto, grace_s=10)
