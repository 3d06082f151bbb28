"""Git repositories for the tests, made with the git CLI in a temporary directory and
reached through file:// (never a network remote), and GitHub's signing code run by node."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *IDENTITY, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.strip()


def make_repo(path: Path, files: dict[str, str], message: str = "First commit") -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, timeout=30)
    commit(path, files, message)
    return path


def commit(repo: Path, files: dict[str, str], message: str, branch: str | None = None) -> str:
    """Write `files` and commit them (on `branch`, created from HEAD if new); the sha."""
    if branch is not None:
        existing = git(repo, "branch", "--list", branch)
        git(repo, "checkout", "-q", *([] if existing else ["-b"]), branch)
    for name, content in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def github_signature(secret: str, body: bytes) -> str:
    """X-Hub-Signature-256 of `body`, computed by @octokit/webhooks-methods under node."""
    done = subprocess.run(
        ["node", str(ROOT / "tests" / "github_sign.mjs")],
        input=json.dumps({"secret": secret, "payload": body.decode()}),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=30,
    )
    return done.stdout.strip()


def push_payload(repo_url: str, full_name: str, ref: str, after: str, **extra) -> dict:
    """A GitHub push event's payload, with the fields Shipyard reads."""
    return {
        "ref": ref,
        "before": "0" * 40,
        "after": after,
        "deleted": False,
        "repository": {"full_name": full_name, "clone_url": repo_url},
        "head_commit": {"id": after, "message": "Pushed commit\n\nbody"},
        **extra,
    }
