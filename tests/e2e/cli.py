"""Running the `shipyard` CLI as a user does: a subprocess with SHIPYARD_URL and
SHIPYARD_API_KEY, against the real local stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.e2e.conftest import ROOT, Stack

EXAMPLES = ROOT / "examples"
CLI_TIMEOUT_S = 300


def run_cli(stack: Stack | None, *args: str, env: dict[str, str] | None = None):
    """The CLI with the environment a user has: the URL, the key, and nothing of AWS."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHIPYARD_"))}
    if stack is not None:
        environment.update(SHIPYARD_URL=stack.url, SHIPYARD_API_KEY=stack.key)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "shipyard_cli", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )


def succeeded(result: subprocess.CompletedProcess) -> str:
    """The URL a successful deploy or rollback printed (its last line on stdout)."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}"
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    return lines[-1]


def deployment_id(result: subprocess.CompletedProcess) -> str:
    """The deployment a `deploy` or `rollback` created, from its progress output."""
    found = re.search(r"Deployment (dep_\w+) \(#\d+\)", result.stderr)
    assert found, result.stderr
    return found.group(1)


def fetch(url: str, timeout_s: float = 10.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def fetch_until(url: str, wanted: str, timeout_s: float = 15.0) -> str:
    """The page at `url` once it contains `wanted` (polled with a deadline)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            status, body = fetch(url)
        except OSError as error:
            status, body = 0, str(error)
        if status == 200 and wanted in body:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} answered {status}, without {wanted!r}:\n{body[:2000]}")
        time.sleep(0.2)


def deployments(stack: Stack, project: str) -> list[dict]:
    result = run_cli(stack, "deployments", "list", "--project", project, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
