"""Refs and URLs as git will see them, checked before git sees them.

A ref comes from users (`POST .../deployments {"git": {"ref"}}`) and from push payloads;
it reaches git as an argument of its own after `--`, never through a shell, and only once
it passed these rules: no leading `-` (an option such as `--upload-pack=...`), no `..`,
no whitespace, control or shell characters, and a valid ref name by git's own rules
(`git check-ref-format`, re-implemented here so the API needs no git binary: the rules
are few and fixed), narrowed to ASCII so that the published schema's pattern
(core/models.py REF_PATTERN) says exactly what is taken. A clone URL's `user:password@`
never leaves this process in a log line or an error: `redact` removes it from any text.
"""

from __future__ import annotations

import re

from chalicelib.core.models import REF_PATTERN

SHA = re.compile(r"^[0-9a-f]{40}$")
MAX_REF = 255
# Shell metacharacters and what git forbids in ref names (git-check-ref-format(1)).
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\;&|$`'\"<>(){}!#%,=+]")
_REF = re.compile(REF_PATTERN)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


class BadRef(ValueError):
    """A ref that is refused; the message says why."""


def check_ref(ref: str) -> str:
    """The ref if git may be given it, else BadRef."""
    if not ref or len(ref) > MAX_REF:
        raise BadRef(f"a ref is 1 to {MAX_REF} characters")
    if ref.startswith("-"):
        raise BadRef("a ref may not start with '-' (it would be read as an option)")
    if ".." in ref or "@{" in ref or ref == "@":
        raise BadRef("a ref may not contain '..' or '@{'")
    if _FORBIDDEN.search(ref):
        raise BadRef("a ref may not contain spaces, control characters or shell characters")
    if ref.startswith("/") or ref.endswith(("/", ".", ".lock")) or "//" in ref:
        raise BadRef("a ref may not start or end with '/', end with '.' or '.lock', or hold '//'")
    if any(part.startswith(".") or part.endswith(".lock") for part in ref.split("/")):
        raise BadRef("no part of a ref may start with '.' or end with '.lock'")
    if not _REF.match(ref):
        raise BadRef(
            "a ref holds ASCII letters, digits, '_', '-', '@' and '.', in parts joined by '/'"
        )
    return ref


def is_sha(ref: str) -> bool:
    return bool(SHA.match(ref))


def branch_of(ref: str) -> str | None:
    """The branch a full ref names (`refs/heads/x` -> `x`), or None for anything else."""
    return ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else None


def redact(text: str) -> str:
    """`text` with every URL's `user:password@` replaced by `***@`."""
    return _USERINFO.sub(r"\1***@", text)
