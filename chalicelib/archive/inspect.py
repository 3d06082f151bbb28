"""Archive safety: the one streaming pass that checks an uploaded .tar.gz (and, with a
destination, unpacks it) before anything of it runs.

This module runs the pass; its parts live beside it: the gzip and tar stream under it
(stream.py), the rules and limits checked entry by entry (rules.py), unpacking that never
writes through a link (unpack.py), and the files kept for the build plan (manifests.py).
Sizes and entry counts are checked from each header before its data is read.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from chalicelib.archive.manifests import MANIFEST_MAX_TOTAL, is_manifest, read_chunks
from chalicelib.archive.rules import ArchiveLimits, Checker, InvalidArchive
from chalicelib.archive.stream import CheckedTarInfo, Inflater
from chalicelib.archive.unpack import Extractor

__all__ = ["ArchiveLimits", "ArchiveReport", "InvalidArchive", "inspect_archive"]

DEFAULT_LIMITS = ArchiveLimits()


@dataclass
class ArchiveReport:
    entries: int
    unpacked_bytes: int
    files: dict[str, bytes] = field(default_factory=dict)


def inspect_archive(
    stream: BinaryIO, dest: Path | None = None, limits: ArchiveLimits = DEFAULT_LIMITS
) -> ArchiveReport:
    """Check (and with `dest`, unpack) a .tar.gz in one streaming pass.

    Raises InvalidArchive at the first broken rule. After a failure `dest` holds a partial
    extraction that the caller must discard.
    """
    checker = Checker(limits)
    extractor = Extractor(dest) if dest is not None else None
    files: dict[str, bytes] = {}
    kept = 0
    inflater = Inflater(stream, limits.max_stream_bytes)
    try:
        with tarfile.open(fileobj=inflater, mode="r|", tarinfo=CheckedTarInfo) as archive:
            for member in archive:
                parts = checker.check(member)
                if not parts:
                    continue
                path = "/".join(parts)
                keep = (
                    bytearray()
                    if member.isreg() and is_manifest(parts) and kept < MANIFEST_MAX_TOTAL
                    else None
                )
                if extractor is None:
                    if keep is not None:
                        for _ in read_chunks(archive.extractfile(member), keep):
                            pass
                elif member.isdir():
                    extractor.directory(parts, member.name)
                elif member.isreg():
                    extractor.file(
                        parts, member.name, member, read_chunks(archive.extractfile(member), keep)
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
