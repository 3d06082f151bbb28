"""Resolving a ref to a commit on the remote, and what every connection to a remote obeys.

`resolve` answers the sha a branch, tag or sha names, before a deployment is recorded, so
that the deployment's `source` says what it builds, a push and an API call of the same
commit are the same flight, and the environment (the branch) is known. For `https://` it
speaks git's smart HTTP protocol itself (one GET of `info/refs`), because the API's Lambda
has no git binary; for `file://` (local stack only) it runs `git ls-remote`.

Outbound: with SHIPYARD_OUTBOUND_LOOPBACK_ONLY (every test run) a remote whose host is not
a loopback address is refused here and in the clone (builders/git.py), by the outbound
rules (outbound/addresses.py: names other than localhost are not even looked up), so no
test ever reaches the internet. Otherwise the rules of webhooks apply: a cloud metadata
address is never reached, a private one only where the operator allows private targets,
and the connection goes to the address that was checked (the clone pins it with git's
`http.curloptResolve`). Redirects are not followed. git runs with a clean
environment (`git_env`): no prompt, no system or global config, only the protocols allowed.
"""

from __future__ import annotations

import base64
import os
import subprocess
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from chalicelib.core.settings import get_settings
from chalicelib.git.refs import branch_of, check_ref, is_sha, redact
from chalicelib.outbound import addresses
from chalicelib.outbound import http as outbound_http

MAX_ADVERTISEMENT = 8 * 1024 * 1024


class Unreachable(Exception):
    """The remote could not be asked (the message says why, credentials redacted)."""


class NoSuchRef(Exception):
    """The remote has no branch or tag of that name."""


@dataclass(frozen=True)
class Resolved:
    ref: str
    sha: str
    branch: str | None


def git_env(home: str) -> dict[str, str]:
    """The environment of every git process: PATH and a private HOME, nothing else of ours."""
    allowed = "file:https" if get_settings().stage in ("local", "test") else "https"
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": home,
        "LANG": "C.UTF-8",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ALLOW_PROTOCOL": allowed,
        "GIT_ASKPASS": "/bin/false",
    }


def check_outbound(url: str) -> list[str] | None:
    """The addresses a remote's host may be reached at (None for `file://`), or Unreachable:
    the outbound rules of webhooks hold (outbound/addresses.py), so a cloud metadata
    address is never reached and a private one only where the operator allows it."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return None
    if parts.scheme != "https" or not parts.hostname:
        raise Unreachable(f"only https:// remotes are cloned, not {redact(url)}")
    settings = get_settings()
    try:
        found = addresses.checked(
            parts.hostname, parts.port or 443, _allow_private(), settings.outbound_loopback_only
        )
    except addresses.Refused as error:
        confined = " (SHIPYARD_OUTBOUND_LOOPBACK_ONLY)" if settings.outbound_loopback_only else ""
        raise Unreachable(f"{error}{confined}") from None
    if settings.outbound_loopback_only and not all(
        addresses.parse(address).is_loopback for address in found
    ):
        raise Unreachable(
            f"{parts.hostname} is not a loopback address: outbound connections are confined "
            "to loopback (SHIPYARD_OUTBOUND_LOOPBACK_ONLY)"
        )
    return found


def _allow_private() -> bool:
    """Whether a remote may be a private address: where the operator allows private
    targets, and, confined to loopback (every test run), the loopback that may be reached."""
    settings = get_settings()
    return settings.allow_private_targets or settings.outbound_loopback_only


def pin(url: str, found: list[str] | None) -> str:
    """curl's resolve entry (git's `http.curloptResolve`) that makes git connect to the
    addresses check_outbound allowed, in the resolver's order, and nowhere else: `host:port:
    a,[b]`. Empty where there is nothing to pin: `file://`, or a host that is an address."""
    parts = urlsplit(url)
    if not found or not parts.hostname:
        return ""
    try:
        addresses.parse(parts.hostname)
        return ""  # an address literal: git looks nothing up
    except ValueError:
        pass
    shown = ",".join(f"[{address}]" if ":" in address else address for address in found)
    return f"{parts.hostname}:{parts.port or 443}:{shown}"


def resolve(url: str, ref: str, timeout_s: float = 20.0) -> Resolved:
    """The commit `ref` names on the remote at `url`. A 40-hex sha is taken as it is (the
    clone finds out whether it exists); a name is looked up as a branch, then a tag."""
    check_ref(ref)
    if is_sha(ref):
        return Resolved(ref, ref, None)
    check_outbound(url)
    advertised = (
        _ls_remote(url, timeout_s) if url.startswith("file://") else _info_refs(url, timeout_s)
    )
    names = (ref,) if ref.startswith("refs/") else (f"refs/heads/{ref}", f"refs/tags/{ref}")
    for name in names:
        sha = advertised.get(name + "^{}") or advertised.get(name)
        if sha:
            return Resolved(ref, sha, branch_of(name))
    raise NoSuchRef(f"the repository has no branch or tag named '{ref}'")


def _ls_remote(url: str, timeout_s: float) -> dict[str, str]:
    try:
        done = subprocess.run(
            ["git", "ls-remote", "--", url],
            env=git_env(os.devnull),
            capture_output=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise Unreachable(f"the repository did not answer within {timeout_s:g} s") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = redact(lines[-1]) if lines else f"git exited with code {done.returncode}"
        raise Unreachable(f"the repository could not be read: {detail}")
    refs = {}
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    return refs


def _info_refs(url: str, timeout_s: float) -> dict[str, str]:
    """The refs a smart-HTTP remote advertises (protocol v0/v1 pkt-lines), asked of the
    address check_outbound allowed (outbound/http.py connects to it, so a name that
    resolves elsewhere the second time gains nothing; redirects are not followed)."""
    parts = urlsplit(url)
    headers = {"User-Agent": "git/shipyard", "Accept": "*/*"}
    if parts.username is not None:
        login = f"{parts.username}:{parts.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(login).decode()
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    answer = outbound_http.request(
        "GET",
        base + "/info/refs?service=git-upload-pack",
        None,
        headers,
        timeout_s,
        MAX_ADVERTISEMENT + 1,
        allow_private=_allow_private(),
    )
    if answer.status is None:
        raise Unreachable(f"the repository could not be reached: {redact(answer.error or '')}")
    if answer.status != 200:
        raise Unreachable(f"the repository answered HTTP {answer.status}")
    if len(answer.body) > MAX_ADVERTISEMENT:
        raise Unreachable("the repository advertises too many refs")
    return parse_advertisement(answer.body)


def parse_advertisement(body: bytes) -> dict[str, str]:
    """Refs by name from an `info/refs` answer: pkt-lines of `<sha> <name>[\\0caps]`."""
    refs: dict[str, str] = {}
    at = 0
    while at + 4 <= len(body):
        try:
            size = int(body[at : at + 4], 16)
        except ValueError:
            raise Unreachable("the repository's answer is not git's smart HTTP") from None
        if size == 0:
            at += 4
            continue
        line = body[at + 4 : at + size].split(b"\0", 1)[0].rstrip(b"\n").decode("utf-8", "replace")
        at += size
        sha, _, name = line.partition(" ")
        if len(sha) == 40 and name and not line.startswith("#"):
            refs[name] = sha
    if not refs and not body.startswith(b"001e# service=git-upload-pack"):
        raise Unreachable("the repository's answer is not git's smart HTTP")
    return refs
