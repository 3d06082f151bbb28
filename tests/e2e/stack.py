"""Starting and stopping the real local stack (`python -m chalicelib.local.stack`) on free
ports with its own state directory, so tests run beside each other and beside `make run`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalStack:
    url: str
    api_key: str
    workspace_id: str
    state_dir: Path
    log_path: Path
    process: subprocess.Popen

    def log_tail(self, lines: int = 80) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """One API call with the stack's key: (status, parsed JSON body or None)."""
        sent = {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}
        sent.update(headers or {})
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers=sent, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                raw = answer.read()
                return answer.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None

    def cli_env(self) -> dict[str, str]:
        """The environment a user of the CLI has: the URL, the key, and nothing of AWS."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHIPYARD_"))}
        env.update(SHIPYARD_URL=self.url, SHIPYARD_API_KEY=self.api_key)
        return env


def start(state_dir: Path, extra_env: dict[str, str] | None = None) -> LocalStack:
    state_dir.mkdir(parents=True, exist_ok=True)
    api_port, moto_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHIPYARD_"))}
    env.update(
        SHIPYARD_STATE_DIR=str(state_dir),
        SHIPYARD_MOTO_PORT=str(moto_port),
        PYTHONUNBUFFERED="1",
        **(extra_env or {}),
    )
    log_path = state_dir / "stack.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "chalicelib.local.stack", "--port", str(api_port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    saved = state_dir / "first-workspace.json"
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the local stack exited:\n{log_path.read_text()[-4000:]}")
        if saved.exists() and _answers(url + "/v1/health"):
            break
        if time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"the local stack did not start:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.2)
    first = json.loads(saved.read_text())
    return LocalStack(url, first["api_key"], first["workspace_id"], state_dir, log_path, process)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, so the stack stops what it started; SIGKILL to its group if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
