"""The rules an uploaded archive must keep and the limits it must stay within, applied
entry by entry from each tar header before its data is read.

Rules (InvalidArchive.rule): `not_gzip_tar`, `absolute_path`, `parent_traversal`,
`link_escape`, `device_file`, `too_large`, `too_many_entries`.

Every symlink is resolved against the archive's own links (on arrival and again at the end,
`Checker.finish`) so a chain of individually harmless links cannot point outside the root.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass

# Per-entry allowance for tar headers, pax/GNU metadata and block padding in the inflated
# stream, on top of the unpacked-bytes limit.
HEADER_ALLOWANCE = 4096
MAX_LINK_HOPS = 40


class InvalidArchive(Exception):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(frozen=True)
class ArchiveLimits:
    max_unpacked_bytes: int = 500 * 1024 * 1024
    max_entries: int = 20_000

    @property
    def max_stream_bytes(self) -> int:
        """The cap on the inflated tar stream: data plus headers and padding."""
        return self.max_unpacked_bytes + (self.max_entries + 16) * HEADER_ALLOWANCE


def mib(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MiB"


def path_parts(name: str) -> list[str]:
    return [part for part in name.split("/") if part not in ("", ".")]


def _resolve(start: list[str], target: str, links: dict[str, str]) -> list[str] | None:
    """Resolve `target` from directory `start` through the archive's symlinks.

    Returns the resolved path components, or None if it leaves the root (or loops).
    """
    resolved = list(start)
    pending = list(reversed(target.split("/")))
    hops = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        key = "/".join([*resolved, part])
        if key in links:
            hops += 1
            link_target = links[key]
            if hops > MAX_LINK_HOPS or link_target.startswith("/"):
                return None
            pending.extend(reversed(link_target.split("/")))
            continue
        resolved.append(part)
    return resolved


class Checker:
    """The rules, applied entry by entry, with the state they need (links, files seen)."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.entries = 0
        self.unpacked = 0
        self.links: dict[str, str] = {}
        self.kinds: dict[str, str] = {}

    def check(self, member: tarfile.TarInfo) -> list[str]:
        """Check one member; return its path components ([] for the root itself)."""
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise InvalidArchive(
                "too_many_entries",
                f"the archive has more than {self.limits.max_entries} entries (entry limit)",
            )
        name = member.name
        if name.startswith("/"):
            raise InvalidArchive(
                "absolute_path", f"entry '{name}' has an absolute path (no absolute paths)"
            )
        parts = path_parts(name)
        if ".." in parts:
            raise InvalidArchive(
                "parent_traversal", f"entry '{name}' leaves the archive root (no '..')"
            )
        if member.ischr() or member.isblk() or member.isfifo():
            kind = "character device" if member.ischr() else "block device"
            kind = "FIFO" if member.isfifo() else kind
            raise InvalidArchive(
                "device_file", f"entry '{name}' is a {kind} (no device files or FIFOs)"
            )
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise InvalidArchive(
                "device_file",
                f"entry '{name}' is a special file of type {member.type!r} "
                "(no device files or FIFOs)",
            )
        if member.isreg():
            self.unpacked += member.size
            if self.unpacked > self.limits.max_unpacked_bytes:
                raise InvalidArchive(
                    "too_large",
                    f"the archive unpacks to more than {mib(self.limits.max_unpacked_bytes)} "
                    f"(unpacked size limit; reached at entry '{name}')",
                )
        if not parts:
            return parts
        path = "/".join(parts)
        if member.issym():
            self._check_symlink(name, parts, member.linkname)
        elif member.islnk():
            self._check_hardlink(name, member.linkname)
        self.links.pop(path, None)
        if member.issym():
            self.links[path] = member.linkname
        self.kinds[path] = "dir" if member.isdir() else "sym" if member.issym() else "file"
        return parts

    def _check_symlink(self, name: str, parts: list[str], target: str) -> None:
        if not target or target.startswith("/"):
            raise InvalidArchive(
                "link_escape",
                f"symlink '{name}' points to '{target}', outside the archive root "
                "(no links leaving the root)",
            )
        links = {**self.links, "/".join(parts): target}
        if _resolve(parts[:-1], target, links) is None:
            raise InvalidArchive(
                "link_escape",
                f"symlink '{name}' points to '{target}', outside the archive root "
                "(no links leaving the root)",
            )

    def _check_hardlink(self, name: str, target: str) -> None:
        target_parts = path_parts(target)
        if target.startswith("/") or ".." in target_parts or not target_parts:
            raise InvalidArchive(
                "link_escape",
                f"hard link '{name}' points to '{target}', outside the archive root "
                "(no links leaving the root)",
            )
        if self.kinds.get("/".join(target_parts)) != "file":
            raise InvalidArchive(
                "link_escape",
                f"hard link '{name}' points to '{target}', which is not a file earlier in "
                "the archive (no links leaving the root)",
            )

    def finish(self) -> None:
        """Re-resolve every symlink against the final set: a later link can redirect one."""
        for path, target in self.links.items():
            if _resolve(path.split("/")[:-1], target, self.links) is None:
                raise InvalidArchive(
                    "link_escape",
                    f"symlink '{path}' points to '{target}', outside the archive root "
                    "(no links leaving the root)",
                )
