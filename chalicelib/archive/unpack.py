"""Unpacking checked archive entries under a destination directory.

Extraction never writes through a link: parent directories are walked one component at a
time and must resolve inside `dest`, and files are opened with O_NOFOLLOW|O_EXCL.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

from chalicelib.archive.rules import InvalidArchive, path_parts


class Extractor:
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
        source = self._parent(path_parts(target), name) / path_parts(target)[-1]
        if source.is_symlink() or not source.is_file():
            raise InvalidArchive(
                "link_escape",
                f"hard link '{name}' points to '{target}', which is not a file earlier in "
                "the archive (no links leaving the root)",
            )
        self._clear(path, keep_dir=False)
        os.link(source, path, follow_symlinks=False)
