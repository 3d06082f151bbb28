"""The environment that points Shipyard's code at the local stack's moto server."""

from __future__ import annotations

import os
import secrets

from chalicelib.core.settings import state_dir

DEFAULT_MOTO_PORT = 5000


def moto_port() -> int:
    return int(os.environ.get("SHIPYARD_MOTO_PORT", DEFAULT_MOTO_PORT))


def cursor_secret() -> str:
    """Stable across restarts, so cursors handed out stay valid; made on first start."""
    path = state_dir() / "cursor-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
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
