"""The streaming layer under the checks: the gzip inflated here (not inside tarfile) so
every inflated byte is counted against a cap, and tar headers whose pax/GNU metadata would
be read into memory refused when oversized.

A small gzip that inflates hugely stops at the cap after reading only a bounded prefix;
tarfile then reads the inflated bytes in its stream mode ("r|"), one pass, no seeking.
"""

from __future__ import annotations

import tarfile
import zlib
from typing import BinaryIO

from chalicelib.archive.rules import InvalidArchive, mib

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1024 * 1024
METADATA_MAX_BYTES = 1024 * 1024


class Inflater:
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
                        f"the archive inflates to more than {mib(self._cap)} "
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


class CheckedTarInfo(tarfile.TarInfo):
    """Refuses oversized pax/GNU metadata headers before tarfile reads them into memory."""

    def _proc_member(self, tarfile_):
        if self.type in _METADATA_TYPES and self.size > METADATA_MAX_BYTES:
            raise InvalidArchive(
                "too_large",
                f"a metadata header of {self.size} bytes exceeds {METADATA_MAX_BYTES} bytes "
                "(unpacked size limit)",
            )
        return super()._proc_member(tarfile_)
