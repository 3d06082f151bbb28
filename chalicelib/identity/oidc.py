"""User tokens: RS256 JWTs of the configured OIDC issuer, checked against its JWKS.

The JWKS is fetched on first use and kept for `oidc_jwks_ttl_s`. A token whose `kid` is
not in it (the issuer rotated its keys, or the token is forged) triggers a refresh, but
at most one per `oidc_jwks_refresh_interval_s`: a flood of tokens with made-up `kid`s
cannot become a flood of fetches. A failed fetch keeps the keys already known, and is
retried no sooner than that interval either. PyJWT is imported on first use (cold start).
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

from chalicelib.core.errors import ServiceUnavailable, Unauthorized
from chalicelib.core.log import logger
from chalicelib.core.settings import get_settings

ALGORITHM = "RS256"
MAX_TOKEN_LENGTH = 8192
_FETCH_TIMEOUT_S = 5


def looks_like_jwt(token: str) -> bool:
    """Three base64url segments: the form check, before any key or network."""
    if len(token) > MAX_TOKEN_LENGTH:
        return False
    segments = token.split(".")
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    return (
        len(segments) == 3 and all(set(part) <= allowed for part in segments) and all(segments[:2])
    )


class Jwks:
    """The issuer's signing keys by `kid`, refreshed on expiry or on an unknown `kid`."""

    def __init__(self) -> None:
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._attempted_at = float("-inf")
        self._unknown_kid_refresh_at = float("-inf")
        self._lock = threading.Lock()
        self.fetches = 0

    def key(self, kid: str) -> Any:
        settings = get_settings()
        with self._lock:
            now = time.monotonic()
            interval = settings.oidc_jwks_refresh_interval_s
            stale = self._fetched_at is None or now - self._fetched_at >= settings.oidc_jwks_ttl_s
            if stale and now - self._attempted_at >= interval:
                self._refresh(now)
            elif kid not in self._keys and now - self._unknown_kid_refresh_at >= interval:
                self._unknown_kid_refresh_at = now
                self._refresh(now)
            if self._fetched_at is None:
                raise ServiceUnavailable(
                    "The identity provider's signing keys are unavailable",
                    retry_after=math.ceil(interval - (now - self._attempted_at)),
                )
            found = self._keys.get(kid)
        if found is None:
            raise Unauthorized("The token is signed with a key the issuer does not publish")
        return found

    def _refresh(self, now: float) -> None:
        import urllib.request

        import jwt

        self._attempted_at = now
        self.fetches += 1
        url = get_settings().oidc_jwks_url or ""
        try:
            with urllib.request.urlopen(url, timeout=_FETCH_TIMEOUT_S) as answer:
                document = json.loads(answer.read())
            published = document["keys"]
        except (OSError, ValueError, TypeError, KeyError):
            # Keep serving the keys we have: a blip at the issuer must not log everyone out.
            logger().exception("Fetching the OIDC JWKS failed", extra={"url": url})
            return
        keys = {}
        for entry in published:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not entry.get("kid"):
                continue
            if entry.get("use", "sig") != "sig":
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK.from_dict(entry, ALGORITHM)
            except jwt.PyJWKError:
                logger().warning("Skipping an unusable JWKS key", extra={"kid": entry["kid"]})
        self._keys = keys
        self._fetched_at = now

    def clear(self) -> None:
        with self._lock:
            self._keys = {}
            self._fetched_at = None
            self._attempted_at = float("-inf")
            self._unknown_kid_refresh_at = float("-inf")
            self.fetches = 0


jwks = Jwks()


def verify(token: str) -> dict[str, Any]:
    """The claims of a valid user token; Unauthorized for anything else."""
    settings = get_settings()
    if not (settings.oidc_issuer and settings.oidc_audience and settings.oidc_jwks_url):
        raise Unauthorized("User tokens are not accepted: no OIDC issuer is configured")
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise Unauthorized("The token is not a well-formed JWT") from None
    # Checked before any key is chosen, so `none` or an HMAC signed with the public key
    # never reaches a verifier.
    if header.get("alg") != ALGORITHM:
        raise Unauthorized(f"User tokens must be signed with {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise Unauthorized("The token names no signing key (kid)")
    key = jwks.key(kid)
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[ALGORITHM],
            audience=settings.oidc_audience,
            issuer=settings.oidc_issuer,
            leeway=settings.oidc_leeway_s,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized("The token is not meant for this API (audience)") from None
    except jwt.InvalidIssuerError:
        raise Unauthorized("The token comes from another issuer") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("The token is not valid") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 1 <= len(subject) <= 255:
        raise Unauthorized("The token's subject is not valid")
    return claims
