"""The environment that points Shipyard's code at the local stack's moto server."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from chalicelib.core.settings import state_dir

DEFAULT_MOTO_PORT = 5000


def moto_port() -> int:
    return int(os.environ.get("SHIPYARD_MOTO_PORT", DEFAULT_MOTO_PORT))


def private_state_dir() -> Path:
    """The state directory, made if missing, readable by its owner only (it holds keys)."""
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    return directory


def write_private(path: Path, text: str) -> None:
    """Write a file that only its owner may read, from its first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def cursor_secret() -> str:
    """Stable across restarts, so cursors handed out stay valid; made on first start."""
    path = private_state_dir() / "cursor-secret"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32))
    path.chmod(0o600)
    return path.read_text().strip()


def apply(port: int | None = None) -> dict[str, str]:
    """Set (without overriding what the user set) and return the local environment."""
    port = port or moto_port()
    values = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MOTO_PORT": str(port),
        "SHIPYARD_STAGE": "local",
        "SHIPYARD_CURSOR_SECRET": cursor_secret(),
        # A webhook pointed at a receiver on this machine must work locally.
        "SHIPYARD_ALLOW_PRIVATE_TARGETS": "true",
    }
    for name, value in values.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in values}
