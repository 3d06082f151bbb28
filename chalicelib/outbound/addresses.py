"""Which addresses a user-given URL may reach.

Cloud metadata addresses are refused always. Unless the operator allows private targets,
so is anything that is not a public unicast address: loopback, private, link-local,
unique-local, the unspecified address, IPv4-mapped IPv6. A name is resolved first and every
address it resolves to is checked, so a name that points at 127.0.0.1, or 127.0.0.1 written
in decimal or octal (which the resolver reads as such), is refused like the literal.
"""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class Refused(Exception):
    """A URL's host or address that may not be reached; the message says why."""


class NotResolved(Refused):
    """A name that does not resolve now, or that is not looked up at all because outbound
    connections are confined to loopback (no DNS query leaves the host then)."""


def parse(address: str) -> IPAddress:
    return ipaddress.ip_address(address.split("%", 1)[0])


def refusal(address: str, allow_private: bool) -> str | None:
    """Why `address` may not be reached, or None if it may."""
    ip = parse(address)
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    if ip in METADATA or mapped in METADATA:
        return "a cloud metadata address"
    if allow_private:
        return None
    if mapped is not None:
        return "an IPv4-mapped IPv6 address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv6Address) and ip in UNIQUE_LOCAL:
        return "a unique-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or not ip.is_global:
        return "not a public address"
    return None


def _local(host: str) -> bool:
    """An address literal, or a name of this machine: resolving it asks no DNS server."""
    try:
        parse(host)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(host)  # the numeric forms the resolver reads as IPv4 (127.1, 0x7f...)
        return True
    except OSError:
        return host.lower().rstrip(".") == "localhost" or host.lower().endswith(".localhost")


def resolve(host: str, port: int, loopback_only: bool = False) -> list[str]:
    """Every address `host` resolves to, in the resolver's order."""
    if loopback_only and not _local(host):
        raise NotResolved(f"{host}: outbound connections are confined to loopback")
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise NotResolved(f"{host} does not resolve") from None
    addresses: list[str] = []
    for *_, sockaddr in found:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    if not addresses:
        raise NotResolved(f"{host} does not resolve")
    return addresses


def checked(host: str, port: int, allow_private: bool, loopback_only: bool = False) -> list[str]:
    """The addresses of `host`, if none of them is refused."""
    addresses = resolve(host, port, loopback_only)
    for address in addresses:
        reason = refusal(address, allow_private)
        if reason:
            shown = host if host == address else f"{host} resolves to {address}, which"
            raise Refused(f"{shown} is {reason}")
    return addresses
