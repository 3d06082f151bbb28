"""Reading a built artifact (a .tar.gz) as a stream, never unpacked to disk: its file list,
one file's bytes, and the same files as a ZIP."""

from __future__ import annotations

import shutil
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from chalicelib.archive.rules import path_parts

ZIP_EPOCH = 315532800  # 1980-01-01: ZIP has no earlier dates


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    type: str  # file | directory | symlink


class TooLarge(Exception):
    """The file is larger than a response may carry."""


def _kind(member: tarfile.TarInfo) -> str | None:
    if member.isreg():
        return "file"
    if member.isdir():
        return "directory"
    if member.issym() or member.islnk():
        return "symlink"
    return None


def entries(stream: BinaryIO) -> Iterator[Entry]:
    """The artifact's entries in archive order (the root itself left out)."""
    with tarfile.open(fileobj=stream, mode="r|gz") as tar:
        for member in tar:
            path = "/".join(path_parts(member.name))
            kind = _kind(member)
            if path and kind:
                yield Entry(path, member.size if kind == "file" else 0, kind)


def read(stream: BinaryIO, wanted: str, max_bytes: int) -> bytes | None:
    """The bytes of the regular file at `wanted` (a normalized path), None if the artifact
    has no such file. Links are not followed: only what the archive holds is served."""
    with tarfile.open(fileobj=stream, mode="r|gz") as tar:
        for member in tar:
            if member.isreg() and "/".join(path_parts(member.name)) == wanted:
                if member.size > max_bytes:
                    raise TooLarge(member.size)
                source = tar.extractfile(member)
                return source.read() if source else b""
    return None


def to_zip(stream: BinaryIO, out: BinaryIO) -> None:
    """Write the artifact's directories and regular files as a ZIP to `out`."""
    with (
        tarfile.open(fileobj=stream, mode="r|gz") as tar,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for member in tar:
            path = "/".join(path_parts(member.name))
            if not path:
                continue
            if member.isdir():
                archive.writestr(zipfile.ZipInfo(path + "/"), b"")
            elif member.isreg():
                info = zipfile.ZipInfo(path, date_time=_date(member.mtime))
                info.external_attr = (member.mode & 0o777) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                source = tar.extractfile(member)
                with archive.open(info, "w") as target:
                    if source:
                        shutil.copyfileobj(source, target)


def _date(mtime: float) -> tuple[int, int, int, int, int, int]:
    return time.gmtime(max(mtime, ZIP_EPOCH))[:6]
