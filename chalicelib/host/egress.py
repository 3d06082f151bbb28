"""The way out of a build's sandbox: an HTTPS proxy (HTTP `CONNECT`) on a Unix socket.

A sandboxed build has no network of its own (host/sandbox.py), yet `npm install` and
`pip install` must reach their registries. The builder binds this proxy's socket into the
sandbox, where socat turns it into `127.0.0.1:PROXY_PORT` and `HTTPS_PROXY` points the
package managers at it. The proxy opens a tunnel only to a host that resolves to no address
of this machine (loopback, or any address its interfaces hold) and no link-local one (the
cloud metadata service): so a build reaches the registries, and never moto, Shipyard's
ports, or anything else listening here. Plain `http://` through the proxy is refused.
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path

PROXY_PORT = 3128
_CONNECT_TIMEOUT_S = 15
_IDLE_TIMEOUT_S = 300
_SHUTDOWN_POLL_S = 0.05
_MAX_HEADER = 16 * 1024


def is_outside(address: str) -> bool:
    """True for an address of another machine that is not link-local."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_outside(str(ip.ipv4_mapped))
    # An address this machine can bind is one of its own.
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(ip), 0))
        except OSError:
            return True
    return False


class EgressProxy:
    """Serves CONNECT on `socket_path` until `close()`; `allowed(address)` decides where a
    tunnel may go (default: is_outside)."""

    def __init__(self, socket_path: Path, allowed: Callable[[str], bool] = is_outside) -> None:
        self.socket_path = socket_path
        self.allowed = allowed
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        socket_path.unlink(missing_ok=True)
        self._server = socketserver.ThreadingUnixStreamServer(str(socket_path), Handler)
        self._server.daemon_threads = True
        # serve_forever looks for a shutdown every poll interval (0.5 s by default), and a
        # build's end waits for its proxy to close.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(_SHUTDOWN_POLL_S,),
            name=f"egress-{socket_path.parent.name}",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.socket_path.unlink(missing_ok=True)

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(_CONNECT_TIMEOUT_S)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk or len(head) > _MAX_HEADER:
                return
            head += chunk
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3 or parts[0].upper() != "CONNECT":
            _answer(client, "405 Method Not Allowed", "only CONNECT (https) goes out")
            return
        host, _, port = parts[1].rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit():
            _answer(client, "400 Bad Request", "CONNECT host:port")
            return
        try:
            addresses = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        except OSError:
            _answer(client, "502 Bad Gateway", f"cannot resolve {host}")
            return
        outside = [a for a in addresses if self.allowed(a[4][0])]
        if len(outside) != len(addresses) or not outside:
            _answer(client, "403 Forbidden", f"{host} is not reachable from a build")
            return
        try:
            upstream = socket.create_connection(outside[0][4][:2], timeout=_CONNECT_TIMEOUT_S)
        except OSError as error:
            _answer(client, "502 Bad Gateway", str(error))
            return
        with upstream:
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
            if rest:
                upstream.sendall(rest)
            _pipe(client, upstream)


def _answer(client: socket.socket, status: str, reason: str) -> None:
    body = (reason + "\n").encode()
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    with contextlib.suppress(OSError):
        client.sendall(head.encode() + body)


def _pipe(one: socket.socket, other: socket.socket) -> None:
    peers = {one: other, other: one}
    while True:
        ready, _, _ = select.select(list(peers), [], [], _IDLE_TIMEOUT_S)
        if not ready:
            return
        for source in ready:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                peers[source].sendall(data)
            except OSError:
                return
