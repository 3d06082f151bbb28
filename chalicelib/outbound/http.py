"""One HTTP request to a user-given URL, made safely.

The host is resolved and checked (outbound/addresses.py) and the socket connects to the
address that was checked, so a name that resolves elsewhere the second time (DNS
rebinding) gains nothing; TLS still verifies the certificate against the name. Where the
socket connects, the operator's confinement applies too: with
SHIPYARD_OUTBOUND_LOOPBACK_ONLY (every test run) nothing but a loopback address is reached,
and a metadata address never is. Redirects are not followed; the answer's body is read up
to a cap, never further.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from chalicelib.core.settings import get_settings
from chalicelib.outbound.addresses import Refused, checked, parse, refusal


@dataclass
class Answer:
    """What came back: a status, or the error that stopped the request."""

    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    duration_ms: int = 0


def connect(address: str, port: int, timeout_s: float) -> socket.socket:
    """A TCP connection to `address` (already resolved and checked), within what the
    operator allows every outbound connection."""
    if refusal(address, allow_private=True):
        raise Refused(f"{address} is a cloud metadata address")
    if get_settings().outbound_loopback_only and not parse(address).is_loopback:
        raise Refused(f"{address}: outbound connections are confined to loopback")
    sock = socket.create_connection((address, port), timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _Pinned(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout_s: float) -> None:
        super().__init__(host, port, timeout=timeout_s)
        self._address = address

    def connect(self) -> None:
        self.sock = connect(self._address, self.port, self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout_s: float) -> None:
        super().__init__(host, port, timeout=timeout_s, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = connect(self._address, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float, max_body: int) -> Answer:
    """POST `body` to `url`; the answer's body is cut at `max_body` bytes (at most one byte
    more is read, to know it was cut)."""
    return request("POST", url, body, headers, timeout_s, max_body)


def request(
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    timeout_s: float,
    max_body: int,
    allow_private: bool | None = None,
) -> Answer:
    """One request to `url`, as `post` describes. `allow_private`: whether a private
    target may be reached (default: where the operator allows private targets)."""
    started = time.monotonic()

    def answer(status: int | None, **kwargs) -> Answer:
        elapsed = round((time.monotonic() - started) * 1000)
        return Answer(status, duration_ms=elapsed, **kwargs)

    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    if allow_private is None:
        allow_private = get_settings().allow_private_targets
    if not secure and not allow_private:
        return answer(None, error="plain http is refused: private targets are not allowed")
    try:
        port = parts.port or (443 if secure else 80)
        address = checked(host, port, allow_private, get_settings().outbound_loopback_only)[0]
    except (Refused, ValueError) as error:
        return answer(None, error=str(error))
    kind = _PinnedTLS if secure else _Pinned
    connection = kind(host, port, address, timeout_s)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        received = response.read(max_body + 1)
        return answer(
            response.status,
            body=received[:max_body],
            headers={k.lower(): v for k, v in response.getheaders()},
        )
    except Refused as error:
        return answer(None, error=str(error))
    except TimeoutError:
        return answer(None, error=f"timed out after {timeout_s:g} s")
    except (OSError, http.client.HTTPException) as error:
        return answer(None, error=f"{type(error).__name__}: {error}".strip(": "))
    finally:
        connection.close()
