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


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise Refused(f"{host} does not resolve") from None
    addresses: list[str] = []
    for *_, sockaddr in found:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    if not addresses:
        raise Refused(f"{host} does not resolve")
    return addresses


def checked(host: str, port: int, allow_private: bool) -> list[str]:
    """The addresses of `host`, if none of them is refused."""
    addresses = resolve(host, port)
    for address in addresses:
        reason = refusal(address, allow_private)
        if reason:
            shown = host if host == address else f"{host} resolves to {address}, which"
            raise Refused(f"{shown} is {reason}")
    return addresses
