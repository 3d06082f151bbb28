"""The SSRF guard of webhook URLs, at create and update: https (plain http only where the
operator allows private targets), a host, and no address the outbound rules refuse. A name
that does not resolve now is accepted (a receiver may be set up after its endpoint; with
outbound connections confined to loopback, names are not looked up at all): each delivery
resolves and checks again where it connects (outbound/http.py), so nothing unchecked is
ever reached."""

from __future__ import annotations

from urllib.parse import urlsplit

from chalicelib.core.errors import ValidationFailed
from chalicelib.core.settings import get_settings
from chalicelib.outbound.addresses import NotResolved, Refused, checked


def check_url(url: str) -> str:
    allow_private = get_settings().allow_private_targets

    def refuse(reason: str) -> ValidationFailed:
        return ValidationFailed({"url": [reason]})

    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise refuse(f"not a valid URL: {error}") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise refuse("must be an https URL" if not allow_private else "must be an http(s) URL")
    if not parts.hostname:
        raise refuse("must name a host")
    try:
        checked(parts.hostname, port, allow_private, get_settings().outbound_loopback_only)
    except NotResolved:
        pass
    except Refused as error:
        raise refuse(f"refused: {error}") from None
    return url
