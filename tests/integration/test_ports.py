"""Ports picked for the servers the stack starts (chalicelib/host/processes.py)."""

from __future__ import annotations

import socket
from pathlib import Path

from chalicelib.host.processes import free_port


def test_free_ports_are_bindable_and_outside_the_ephemeral_range():
    """A port picked for a server is not one an outgoing connection may take meanwhile."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(20):
        port = free_port()
        assert 1024 <= port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
