"""The files of an archive kept for the build plan (buildplan/plan.py reads them): which
names, how deep, how much of each and in all.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from chalicelib.archive.stream import CHUNK

# Files read for the build plan, by name: their first MANIFEST_MAX_BYTES, at most
# MANIFEST_MAX_DEPTH directories deep, never from dependency or VCS directories, and no
# more than MANIFEST_MAX_TOTAL bytes in all.
MANIFEST_NAMES = frozenset(
    {
        "package.json",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "requirements.txt",
        "pyproject.toml",
        "Pipfile",
        "setup.py",
        "Procfile",
        "index.html",
        "app.py",
        "main.py",
        "server.py",
        "wsgi.py",
        "asgi.py",
        "manage.py",
        "server.js",
        "index.js",
        "app.js",
        "main.js",
    }
)
MANIFEST_MAX_BYTES = 256 * 1024
MANIFEST_MAX_TOTAL = 8 * 1024 * 1024
MANIFEST_MAX_DEPTH = 3
MANIFEST_SKIP_DIRS = frozenset(
    {"node_modules", ".git", ".venv", "venv", "__pycache__", ".deps", "site-packages"}
)


def is_manifest(parts: list[str]) -> bool:
    """Whether the file at these path components is one the build plan reads."""
    return (
        len(parts) <= MANIFEST_MAX_DEPTH + 1
        and parts[-1] in MANIFEST_NAMES
        and not MANIFEST_SKIP_DIRS.intersection(parts[:-1])
    )


def read_chunks(reader, keep: bytearray | None) -> Iterator[bytes]:
    """An entry's data, chunk by chunk; its first MANIFEST_MAX_BYTES also go to `keep`."""
    while chunk := reader.read(CHUNK):
        if keep is not None and len(keep) < MANIFEST_MAX_BYTES:
            keep.extend(chunk[: MANIFEST_MAX_BYTES - len(keep)])
        yield chunk


def from_directory(root: Path) -> dict[str, bytes]:
    """The manifest files of a source tree on disk (a git checkout), as an archive's pass
    keeps them: the same names, depth and caps. Links are not followed."""
    files: dict[str, bytes] = {}
    kept = 0
    for path in sorted(root.rglob("*")):
        parts = list(path.relative_to(root).parts)
        if path.is_symlink() or not path.is_file() or not is_manifest(parts):
            continue
        if kept >= MANIFEST_MAX_TOTAL:
            break
        with path.open("rb") as handle:
            data = handle.read(MANIFEST_MAX_BYTES)
        files["/".join(parts)] = data
        kept += len(data)
    return files
