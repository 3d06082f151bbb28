"""boto3 clients, created lazily and cached per process.

boto3 is imported here and nowhere on the import path of `app`, so a cold start pays for
it only when a request first needs AWS. The endpoint comes from boto3's own
`AWS_ENDPOINT_URL` variable, which the local stack points at moto. Every call has bounded
connect and read timeouts and a bounded number of attempts (core/settings.py), so an AWS
that stalls fails a request within seconds instead of hanging it.
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

            settings = get_settings()
            config = Config(
                retries={"total_max_attempts": settings.aws_max_attempts, "mode": "standard"},
                connect_timeout=settings.aws_connect_timeout_s,
                read_timeout=settings.aws_read_timeout_s,
                max_pool_connections=50,
            )
            _clients[service] = boto3.session.Session().client(
                service, region_name=settings.region, config=config
            )
        return _clients[service]


def reset_clients() -> None:
    """Forget every client (tests switch between moto mocks and endpoints)."""
    with _lock:
        _clients.clear()
