"""Artifacts: a built app packed as a .tar.gz in the artifacts bucket, and unpacked again
where it runs. Unpacking goes through inspect_archive, so an artifact gets the same
checks as an upload (with larger limits: a built app carries its dependencies)."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import BinaryIO

from chalicelib.archive.inspect import ArchiveLimits, inspect_archive
from chalicelib.archive.rules import Checker, InvalidArchive, path_parts
from chalicelib.aws.clients import client
from chalicelib.buildplan.model import ARTIFACT_NAME
from chalicelib.core.settings import get_settings

ARTIFACT_LIMITS = ArchiveLimits(max_unpacked_bytes=2 * 1024**3, max_entries=200_000)


class ArtifactError(Exception):
    """The build output cannot be packed; the message says why."""


def artifact_key(project_id: str, deployment_id: str) -> str:
    return f"artifacts/{project_id}/{deployment_id}/{ARTIFACT_NAME}"


def pack_and_upload(
    source_dir: Path, key: str, include: str = ".", exclude: Collection[str] = ()
) -> None:
    """Pack `include` (a path inside source_dir, kept at that path in the archive; "." for
    all of it, less the top-level names in `exclude`) and upload it to the bucket."""
    with tempfile.TemporaryFile() as spool:
        pack(source_dir, spool, include, exclude)
        spool.seek(0)
        client("s3").upload_fileobj(spool, get_settings().bucket, key)


def download_and_unpack(key: str, dest: Path) -> None:
    """Unpack an artifact into `dest`; on any failure `dest` is removed again."""
    body = client("s3").get_object(Bucket=get_settings().bucket, Key=key)["Body"]
    try:
        inspect_archive(body, dest, ARTIFACT_LIMITS)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        body.close()


class _Packer:
    def __init__(self, root: Path, tar: tarfile.TarFile) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.tar = tar
        self.entries = 0
        self.size = 0

    def _inside(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real == self.real_root or real.startswith(self.real_root + os.sep)

    def add(self, path: Path, arcname: str, exclude: Collection[str] = ()) -> None:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) and not self._inside(str(path)):
            raise ArtifactError(
                f"the build output has a link leaving the app directory: "
                f"'{arcname}' -> '{os.readlink(path)}'"
            )
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
            return
        self.entries += 1
        if stat.S_ISREG(mode):
            self.size += path.lstat().st_size
        if self.entries > ARTIFACT_LIMITS.max_entries:
            raise ArtifactError(
                f"the build output has more than {ARTIFACT_LIMITS.max_entries} files and folders"
            )
        if self.size > ARTIFACT_LIMITS.max_unpacked_bytes:
            raise ArtifactError(
                f"the build output is larger than {ARTIFACT_LIMITS.max_unpacked_bytes} bytes"
            )
        if arcname != ".":
            self.tar.add(path, arcname, recursive=False, filter=_anonymous)
        if stat.S_ISDIR(mode):
            for child in sorted(os.listdir(path)):
                if arcname == "." and child in exclude:
                    continue
                self.add(path / child, child if arcname == "." else f"{arcname}/{child}")


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack(source_dir: Path, out: BinaryIO, include: str = ".", exclude: Collection[str] = ()):
    """Write the .tar.gz of `include` inside `source_dir` to `out`."""
    start = source_dir / include
    if include != "." and (start.is_symlink() or not start.is_dir()):
        raise ArtifactError(f"the output directory '{include}' does not exist after the build")
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
        _Packer(source_dir, tar).add(start, include, exclude)


def pack_files(files: Mapping[str, bytes]) -> bytes:
    """The .tar.gz of files given by path, each checked by the upload rules first
    (`InvalidArchive` for a path that escapes, too many files or too many bytes)."""
    checker = Checker(ArchiveLimits())
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
        for path, content in files.items():
            if not path_parts(path) or path.endswith("/"):
                raise InvalidArchive("not_a_file", f"'{path}' names no file")
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = 0o644
            checker.check(info)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()
