"""boto3 clients, created lazily and cached per process.

boto3 is imported here and nowhere on the import path of `app`, so a cold start pays for
it only when a request first needs AWS. The endpoint comes from boto3's own
`AWS_ENDPOINT_URL` variable, which the local stack points at moto.
"""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.core.settings import get_settings

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client(service: str) -> Any:
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        if service not in _clients:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=50
            )
            _clients[service] = boto3.session.Session().client(
                service, region_name=get_settings().region, config=config
            )
        return _clients[service]


def reset_clients() -> None:
    """Forget every client (tests switch between moto mocks and endpoints)."""
    with _lock:
        _clients.clear()
