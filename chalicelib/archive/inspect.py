"""Archive safety: the one streaming pass that checks an uploaded .tar.gz (and, with a
destination, unpacks it) before anything of it runs.

Rules (InvalidArchive.rule): `not_gzip_tar`, `absolute_path`, `parent_traversal`,
`link_escape`, `device_file`, `too_large`, `too_many_entries`.

The gzip layer is inflated here, not inside tarfile, so every inflated byte is counted and
a small gzip that inflates hugely stops at the cap after reading only a bounded prefix;
tarfile then reads the inflated bytes in its stream mode ("r|"), one pass, no seeking.
Sizes and entry counts are checked from each header before its data is read.

Extraction never writes through a link: parent directories are walked one component at a
time and must resolve inside `dest`, files are opened with O_NOFOLLOW|O_EXCL, and every
symlink is resolved against the archive's own links (on arrival and again at the end) so
a chain of individually harmless links cannot point outside either.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1024 * 1024
# Per-entry allowance for tar headers, pax/GNU metadata and block padding in the inflated
# stream, on top of the unpacked-bytes limit.
HEADER_ALLOWANCE = 4096
METADATA_MAX_BYTES = 1024 * 1024
MAX_LINK_HOPS = 40

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


@dataclass
class ArchiveReport:
    entries: int
    unpacked_bytes: int
    files: dict[str, bytes] = field(default_factory=dict)


def _mib(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MiB"


class _Inflater:
    """A read()-able view of the inflated bytes of a gzip stream, counted against a cap.

    Each read inflates at most what was asked for (zlib's max_length), so memory stays
    bounded however well the input compresses. Concatenated gzip members are read as one
    stream, as gzip(1) does; bytes after the last member that are not gzip are ignored.
    """

    def __init__(self, raw: BinaryIO, cap: int) -> None:
        self._raw = raw
        self._cap = cap
        self._inflated = 0
        self._input = b""
        self._decompressor = zlib.decompressobj(wbits=31)
        self._done = False
        head = self._fill(2)
        if head[:2] != GZIP_MAGIC:
            raise InvalidArchive(
                "not_gzip_tar", "the archive is not gzip-compressed (gzip tar only)"
            )

    def _fill(self, wanted: int) -> bytes:
        while len(self._input) < wanted:
            chunk = self._raw.read(64 * 1024)
            if not chunk:
                break
            self._input += chunk
        return self._input

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = CHUNK
        out: list[bytes] = []
        got = 0
        while got < size and not self._done:
            if not self._input:
                self._input = self._raw.read(64 * 1024)
            data = self._inflate(size - got)
            if not data and not self._input and not self._decompressor.eof:
                # Input exhausted and zlib holds nothing more: a truncated stream, which
                # tarfile reports if it ends inside an entry.
                self._done = True
            if self._decompressor.eof:
                self._next_member()
            if data:
                self._inflated += len(data)
                if self._inflated > self._cap:
                    raise InvalidArchive(
                        "too_large",
                        f"the archive inflates to more than {_mib(self._cap)} "
                        "(unpacked size limit; stopped while inflating)",
                    )
                out.append(data)
                got += len(data)
        return b"".join(out)

    def _inflate(self, limit: int) -> bytes:
        try:
            data = self._decompressor.decompress(self._input, limit)
        except zlib.error as error:
            raise InvalidArchive(
                "not_gzip_tar", f"the archive is not valid gzip data ({error}) (gzip tar only)"
            ) from None
        self._input = self._decompressor.unconsumed_tail
        return data

    def _next_member(self) -> None:
        self._input = self._decompressor.unused_data
        if self._fill(2)[:2] == GZIP_MAGIC:
            self._decompressor = zlib.decompressobj(wbits=31)
        else:
            self._done = True


_METADATA_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


class _CheckedTarInfo(tarfile.TarInfo):
    """Refuses oversized pax/GNU metadata headers before tarfile reads them into memory."""

    def _proc_member(self, tarfile_):
        if self.type in _METADATA_TYPES and self.size > METADATA_MAX_BYTES:
            raise InvalidArchive(
                "too_large",
                f"a metadata header of {self.size} bytes exceeds {METADATA_MAX_BYTES} bytes "
                "(unpacked size limit)",
            )
        return super()._proc_member(tarfile_)


def _parts(name: str) -> list[str]:
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


class _Checker:
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
        parts = _parts(name)
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
                    f"the archive unpacks to more than {_mib(self.limits.max_unpacked_bytes)} "
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
        target_parts = _parts(target)
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


def _manifest_name(parts: list[str]) -> bool:
    return (
        len(parts) <= MANIFEST_MAX_DEPTH + 1
        and parts[-1] in MANIFEST_NAMES
        and not MANIFEST_SKIP_DIRS.intersection(parts[:-1])
    )


class _Extractor:
    """Writes checked members under `dest`, never through a link, never outside it."""

    def __init__(self, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        self.root = Path(os.path.realpath(dest))

    def _inside(self, path: Path) -> bool:
        real = os.path.realpath(path)
        return real == str(self.root) or real.startswith(str(self.root) + os.sep)

    def _parent(self, parts: list[str], name: str) -> Path:
        current = self.root
        for part in parts[:-1]:
            current = current / part
            if current.is_symlink():
                if not self._inside(current):
                    raise InvalidArchive(
                        "link_escape",
                        f"entry '{name}' would be written through a link leaving the root "
                        "(no links leaving the root)",
                    )
                continue
            if current.exists() and not current.is_dir():
                current.unlink()
            if not current.exists():
                current.mkdir(mode=0o755)
        if not self._inside(current):
            raise InvalidArchive(
                "link_escape",
                f"entry '{name}' would be written outside the archive root "
                "(no links leaving the root)",
            )
        return current

    @staticmethod
    def _clear(path: Path, keep_dir: bool) -> None:
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.unlink()
        elif path.is_dir() and not keep_dir:
            shutil.rmtree(path)

    def directory(self, parts: list[str], name: str) -> None:
        target = self._parent(parts, name) / parts[-1]
        self._clear(target, keep_dir=True)
        if not target.exists():
            target.mkdir(mode=0o755)

    def file(self, parts: list[str], name: str, member: tarfile.TarInfo, data: Iterator[bytes]):
        target = self._parent(parts, name) / parts[-1]
        self._clear(target, keep_dir=False)
        mode = 0o755 if member.mode & 0o111 else 0o644
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with os.fdopen(os.open(target, flags, mode), "wb") as out:
            for chunk in data:
                out.write(chunk)
        os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)

    def symlink(self, parts: list[str], name: str, target: str) -> None:
        path = self._parent(parts, name) / parts[-1]
        self._clear(path, keep_dir=False)
        os.symlink(target, path)

    def hardlink(self, parts: list[str], name: str, target: str) -> None:
        path = self._parent(parts, name) / parts[-1]
        source = self._parent(_parts(target), name) / _parts(target)[-1]
        if source.is_symlink() or not source.is_file():
            raise InvalidArchive(
                "link_escape",
                f"hard link '{name}' points to '{target}', which is not a file earlier in "
                "the archive (no links leaving the root)",
            )
        self._clear(path, keep_dir=False)
        os.link(source, path, follow_symlinks=False)


def _chunks(reader, keep: bytearray | None) -> Iterator[bytes]:
    while chunk := reader.read(CHUNK):
        if keep is not None and len(keep) < MANIFEST_MAX_BYTES:
            keep.extend(chunk[: MANIFEST_MAX_BYTES - len(keep)])
        yield chunk


def inspect_archive(
    stream: BinaryIO, dest: Path | None = None, limits: ArchiveLimits = ArchiveLimits()
) -> ArchiveReport:
    """Check (and with `dest`, unpack) a .tar.gz in one streaming pass.

    Raises InvalidArchive at the first broken rule. After a failure `dest` holds a partial
    extraction that the caller must discard.
    """
    checker = _Checker(limits)
    extractor = _Extractor(dest) if dest is not None else None
    files: dict[str, bytes] = {}
    kept = 0
    inflater = _Inflater(stream, limits.max_stream_bytes)
    try:
        with tarfile.open(fileobj=inflater, mode="r|", tarinfo=_CheckedTarInfo) as archive:
            for member in archive:
                parts = checker.check(member)
                if not parts:
                    continue
                path = "/".join(parts)
                keep = (
                    bytearray()
                    if member.isreg() and _manifest_name(parts) and kept < MANIFEST_MAX_TOTAL
                    else None
                )
                if extractor is None:
                    if keep is not None:
                        for _ in _chunks(archive.extractfile(member), keep):
                            pass
                elif member.isdir():
                    extractor.directory(parts, member.name)
                elif member.isreg():
                    extractor.file(
                        parts, member.name, member, _chunks(archive.extractfile(member), keep)
                    )
                elif member.issym():
                    extractor.symlink(parts, member.name, member.linkname)
                else:
                    extractor.hardlink(parts, member.name, member.linkname)
                if keep is not None:
                    files[path] = bytes(keep)
                    kept += len(keep)
                else:
                    files.pop(path, None)
    except (tarfile.TarError, EOFError, IndexError, ValueError) as error:
        # tarfile reports some malformed headers as plain IndexError/ValueError.
        raise InvalidArchive(
            "not_gzip_tar", f"the archive is not a valid tar file ({error}) (gzip tar only)"
        ) from None
    checker.finish()
    return ArchiveReport(entries=checker.entries, unpacked_bytes=checker.unpacked, files=files)
