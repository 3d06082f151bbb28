"""The real local stack (moto in server mode and the API), on free ports, for the
tests of this directory; started once per module and stopped after it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalStack:
    def __init__(self, url: str, api_key: str, env: dict[str, str]) -> None:
        self.url = url
        self.api_key = api_key
        self.env = env

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


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("stack")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "SHIPYARD_", "MOTO_"))
    }
    env.update(
        {
            "SHIPYARD_MOTO_PORT": str(free_port()),
            "SHIPYARD_STATE_DIR": str(state),
            "PYTHONUNBUFFERED": "1",
        }
    )
    port = free_port()
    log = open(state / "stack.log", "w+")  # noqa: SIM115 - read back while the stack runs
    process = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.local.stack", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        key = None
        while key is None:
            assert process.poll() is None, (state / "stack.log").read_text()
            assert time.monotonic() < deadline, "the local stack did not start"
            found = re.search(r"API key:\s+(sk_live_\w+)", (state / "stack.log").read_text())
            key = found.group(1) if found else None
            time.sleep(0.1)
        yield LocalStack(f"http://127.0.0.1:{port}", key, env)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
