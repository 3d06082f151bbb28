"""Packing a directory into the `.tar.gz` a deployment is built from.

The archive is deterministic: the same files give the same bytes (sorted entries, no
timestamps, owners or umask in it), so its sha256 identifies the source. It holds only
regular files, directories and symlinks that stay inside the directory, which is what
Shipyard's archive checks accept.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from shipyard_cli.ignore import Rules


class PackError(Exception):
    """The directory can't be packed as it is; the message says why."""


@dataclass(frozen=True)
class Entry:
    path: str  # archive-relative, `/`-separated
    kind: str  # "file" | "dir" | "symlink"
    source: Path


@dataclass(frozen=True)
class Packed:
    files: int
    size: int
    sha256: str


def collect(root: Path) -> list[Entry]:
    """The entries of `root` that are uploaded, in archive order."""
    root = root.resolve()
    if not root.is_dir():
        raise PackError(f"{root} is not a directory")
    entries: list[Entry] = []
    _walk(root, root, "", Rules().with_directory(root, ""), entries)
    return entries


def _walk(root: Path, directory: Path, prefix: str, rules: Rules, out: list[Entry]) -> None:
    try:
        children = sorted(os.scandir(directory), key=lambda child: child.name)
    except OSError as error:
        raise PackError(f"cannot read {directory}: {error.strerror}") from None
    for child in children:
        relative = prefix + child.name
        path = Path(child.path)
        if child.is_symlink():
            # As in git, a symlink is never a directory to the patterns.
            if rules.excluded(relative, False):
                continue
            _check_link(root, path, relative)
            out.append(Entry(relative, "symlink", path))
        elif child.is_dir():
            if rules.excluded(relative, True):
                continue
            out.append(Entry(relative, "dir", path))
            _walk(root, path, relative + "/", rules.with_directory(path, relative), out)
        elif child.is_file():
            if not rules.excluded(relative, False):
                out.append(Entry(relative, "file", path))
        elif not rules.excluded(relative, False):
            raise PackError(f"{relative} is not a regular file, directory or symlink")


def _check_link(root: Path, path: Path, relative: str) -> None:
    target = os.readlink(path)
    resolved = Path(os.path.normpath(path.parent / target))
    if os.path.isabs(target) or not resolved.is_relative_to(root):
        raise PackError(
            f"symlink {relative} -> {target} points outside the directory; "
            "Shipyard refuses such archives (replace it with a copy or ignore it)"
        )


def _tar_info(entry: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(entry.source)
        info.mode = 0o777
    else:
        executable = entry.source.stat().st_mode & stat.S_IXUSR
        info.mode = 0o755 if executable else 0o644
        info.size = entry.source.stat().st_size
    return info


def write_archive(entries: list[Entry], out: BinaryIO) -> None:
    """Write the entries as a deterministic gzip tar to `out`."""
    # GzipFile rather than tarfile's "w:gz" so the gzip header carries no mtime or name.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for entry in entries:
            info = _tar_info(entry)
            if entry.kind == "file":
                with entry.source.open("rb") as content:
                    archive.addfile(info, content)
            else:
                archive.addfile(info)


def pack(root: Path, out: BinaryIO) -> Packed:
    """Pack `root` into `out` (a binary file opened for writing and reading)."""
    entries = collect(root)
    files = sum(1 for entry in entries if entry.kind != "dir")
    if files == 0:
        raise PackError(f"nothing to deploy in {root}: every file is ignored or it is empty")
    out.seek(0)
    out.truncate()
    write_archive(entries, out)
    size = out.tell()
    out.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: out.read(io.DEFAULT_BUFFER_SIZE * 16), b""):
        digest.update(chunk)
    out.seek(0)
    return Packed(files=files, size=size, sha256=digest.hexdigest())


def read_chunks(stream: BinaryIO, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
    yield from iter(lambda: stream.read(chunk_size), b"")
