"""What a project's `git.repository` names and where it is cloned from.

`owner/name` is a GitHub repository, cloned from `https://github.com/owner/name.git`; a
clone URL is `https://...` (credentials in it are allowed and redacted everywhere), or
`file://...` on the local stack only. `match_key` is what a GitHub push is matched on: the
same for `owner/name`, its https clone URL with or without `.git` and any credentials, so
the projects of a repository are found with one Query of an index.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from chalicelib.core.models import REPOSITORY_PATTERN

GITHUB_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_REPOSITORY = re.compile(REPOSITORY_PATTERN)
LOCAL_STAGES = ("local", "test")


class BadRepository(ValueError):
    """A repository setting that is refused; the message says why."""


def check(repository: str, stage: str) -> str:
    """The repository if this stage can clone it, else BadRepository. Its form is the
    published schema's pattern (core/models.py REPOSITORY_PATTERN): a host and a path for
    https, an absolute path for file://, no spaces or control characters."""
    if not _REPOSITORY.match(repository):
        raise BadRepository(
            "give owner/name, an https:// clone URL with a host and a path, or (locally) "
            "file:///absolute/path"
        )
    if repository.startswith("file:") and stage not in LOCAL_STAGES:
        raise BadRepository("file:// repositories are for the local stack only")
    return repository


def clone_url(repository: str) -> str:
    if GITHUB_NAME.match(repository):
        return f"https://github.com/{repository}.git"
    return repository


def match_key(repository: str) -> str:
    """The key a push matches projects on (lower case, no credentials, no `.git`)."""
    if GITHUB_NAME.match(repository):
        return f"github.com/{repository}".lower()
    parts = urlsplit(repository)
    path = parts.path.rstrip("/")
    path = path[: -len(".git")] if path.endswith(".git") else path
    if parts.scheme == "file":
        return f"file://{path}"
    return f"{(parts.hostname or '').lower()}{path.lower()}"
