"""Archive safety: a hostile archive for every rule, built here with tarfile and zlib."""

from __future__ import annotations

import gzip
import io
import tarfile
import time
import tracemalloc
import zlib

import pytest

from chalicelib.archive.inspect import ArchiveLimits, InvalidArchive, inspect_archive


def member(name: str, data: bytes = b"", **attributes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    for key, value in attributes.items():
        setattr(info, key, value)
    if info.type != tarfile.REGTYPE:
        info.size = 0
    return info, data


def tgz(*members: tuple[tarfile.TarInfo, bytes], format=tarfile.PAX_FORMAT) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=format) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return gzip.compress(raw.getvalue())


class CountingReader(io.BytesIO):
    """The compressed input, counting how much of it the check consumed."""

    consumed = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.consumed += len(chunk)
        return chunk


DEFAULT_LIMITS = ArchiveLimits()


def rejected(data: bytes, rule: str, dest=None, limits=DEFAULT_LIMITS) -> InvalidArchive:
    with pytest.raises(InvalidArchive) as raised:
        inspect_archive(io.BytesIO(data), dest, limits)
    assert raised.value.rule == rule
    assert raised.value.message == str(raised.value)
    return raised.value


def gzip_of(first: bytes, repeated: bytes, times: int, last: bytes = b"") -> bytes:
    """A gzip stream of first + repeated * times + last, built without holding it."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = [compressor.compress(first)]
    out.extend(compressor.compress(repeated) for _ in range(times))
    out.append(compressor.compress(last))
    out.append(compressor.flush())
    return b"".join(out)


def test_a_good_archive_is_reported_and_unpacked(tmp_path):
    # Given an app with a manifest, a nested file, an inside symlink and a hard link
    data = tgz(
        member("./", type=tarfile.DIRTYPE),
        member("./package.json", b'{"name": "app"}'),
        member("./src", type=tarfile.DIRTYPE),
        member("./src/index.js", b"console.log(1)\n", mode=0o755),
        member("./src/link.js", type=tarfile.SYMTYPE, linkname="index.js"),
        member("./bin/up", type=tarfile.SYMTYPE, linkname="../src/index.js"),
        member("./src/hard.js", type=tarfile.LNKTYPE, linkname="src/index.js"),
        member("./node_modules/x/package.json", b"{}"),
    )

    # When it is inspected into a directory
    report = inspect_archive(io.BytesIO(data), tmp_path / "out")

    # Then every entry is counted, manifests are kept, and the tree is on disk
    assert report.entries == 8
    assert report.unpacked_bytes == len(b'{"name": "app"}') + len(b"console.log(1)\n") + 2
    assert report.files == {
        "package.json": b'{"name": "app"}',
        "src/index.js": b"console.log(1)\n",
    }
    out = tmp_path / "out"
    assert (out / "src/index.js").read_text() == "console.log(1)\n"
    assert (out / "src/index.js").stat().st_mode & 0o111
    assert (out / "src/link.js").is_symlink()
    assert (out / "bin/up").read_text() == "console.log(1)\n"
    assert (out / "src/hard.js").stat().st_ino == (out / "src/index.js").stat().st_ino


def test_inspection_without_destination_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = inspect_archive(io.BytesIO(tgz(member("index.html", b"<h1>hi</h1>"))))
    assert report.files == {"index.html": b"<h1>hi</h1>"}
    assert list(tmp_path.iterdir()) == []


def test_absolute_path():
    error = rejected(tgz(member("/etc/cron.d/evil", b"x")), "absolute_path")
    assert "/etc/cron.d/evil" in error.message
    assert "absolute" in error.message


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "ok/.."])
def test_parent_traversal(name):
    error = rejected(tgz(member(name, b"x")), "parent_traversal")
    assert "'..'" in error.message


@pytest.mark.parametrize("target", ["../outside", "/etc/passwd", "a/../../..", "sub/../../x", ""])
def test_symlink_escaping(target, tmp_path):
    data = tgz(
        member("sub", type=tarfile.DIRTYPE), member("link", type=tarfile.SYMTYPE, linkname=target)
    )
    error = rejected(data, "link_escape", tmp_path / "out")
    assert "link" in error.message
    assert not (tmp_path / "outside").exists()


def test_symlink_chain_escaping_through_a_later_link(tmp_path):
    # 'x' -> 'd/..' is harmless while 'd' is a directory name; 'd' -> '.' makes it the
    # root's parent. The final check resolves every link against all the others.
    data = tgz(
        member("x", type=tarfile.SYMTYPE, linkname="d/.."),
        member("d", type=tarfile.SYMTYPE, linkname="."),
    )
    rejected(data, "link_escape")
    rejected(data, "link_escape", tmp_path / "out")


def test_extraction_never_writes_through_an_escaping_link(tmp_path):
    # Given links that only escape together, and a file addressed through them
    data = tgz(
        member("x", type=tarfile.SYMTYPE, linkname="d/.."),
        member("d", type=tarfile.SYMTYPE, linkname="."),
        member("x/evil.txt", b"pwned"),
    )
    dest = tmp_path / "a" / "out"

    # When it is unpacked, it is refused before the file is written
    error = rejected(data, "link_escape", dest)
    assert "x/evil.txt" in error.message
    assert not (tmp_path / "a" / "evil.txt").exists()
    assert not list(tmp_path.rglob("evil.txt"))


@pytest.mark.parametrize("target", ["../outside", "/etc/passwd", "missing.txt"])
def test_hardlink_escaping(target, tmp_path):
    data = tgz(member("a.txt", b"a"), member("h", type=tarfile.LNKTYPE, linkname=target))
    error = rejected(data, "link_escape", tmp_path / "out")
    assert "hard link" in error.message


@pytest.mark.parametrize(
    ("kind", "word"),
    [
        (tarfile.CHRTYPE, "character device"),
        (tarfile.BLKTYPE, "block device"),
        (tarfile.FIFOTYPE, "FIFO"),
    ],
)
def test_device_files_and_fifos(kind, word, tmp_path):
    data = tgz(member("dev/thing", type=kind, devmajor=1, devminor=3))
    error = rejected(data, "device_file", tmp_path / "out")
    assert word in error.message
    assert not (tmp_path / "out" / "dev" / "thing").exists()


def test_too_many_entries_stops_at_the_limit():
    data = tgz(*(member(f"f{i}.txt", b"x") for i in range(50)))
    error = rejected(data, "too_many_entries", limits=ArchiveLimits(max_entries=10))
    assert "10 entries" in error.message


def test_too_large_unpacked():
    data = tgz(member("a.bin", b"a" * 600), member("b.bin", b"b" * 600))
    error = rejected(data, "too_large", limits=ArchiveLimits(max_unpacked_bytes=1000))
    assert "b.bin" in error.message


def test_a_declared_huge_file_stops_before_its_data_is_inflated():
    # Given a 256 MiB file of zeros: about a MiB compressed
    info, _ = member("zeros.bin")
    info.size = 256 * 1024 * 1024
    data = gzip_of(info.tobuf(format=tarfile.PAX_FORMAT), bytes(1024 * 1024), 256, bytes(1024))
    source = CountingReader(data)

    # When it is checked against a 1 MiB limit
    with pytest.raises(InvalidArchive) as raised:
        inspect_archive(source, limits=ArchiveLimits(max_unpacked_bytes=1024 * 1024))

    # Then it stops at the header, having read a sliver of the input
    assert raised.value.rule == "too_large"
    assert source.consumed < len(data) / 4


def sparse_bomb(inflated_mib: int) -> bytes:
    """A GNU sparse header followed by endless 'extended' header blocks: no size is
    declared anywhere, yet tarfile reads block after block. Only the gzip-layer cap
    can stop it."""
    info = tarfile.TarInfo("sparse")
    info.type = tarfile.GNUTYPE_SPARSE
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[482] = 1  # isextended
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    extended = bytes(504) + b"\x01" + bytes(7)
    return gzip_of(bytes(header), extended * 2048, inflated_mib)


def test_a_gzip_bomb_stops_at_the_cap_with_bounded_input_time_and_memory():
    # Given a gzip stream that inflates to 256 MiB and declares nothing
    data = sparse_bomb(256)
    assert len(data) * 50 < 256 * 1024 * 1024
    source = CountingReader(data)
    limits = ArchiveLimits(max_unpacked_bytes=1024 * 1024, max_entries=100)

    # When it is checked
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(InvalidArchive) as raised:
            inspect_archive(source, limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started

    # Then it stops on the inflated-bytes cap, after a small prefix of the input, without
    # holding more than a few MiB, long before inflating 256 MiB
    assert raised.value.rule == "too_large"
    assert "inflat" in raised.value.message
    assert source.consumed < len(data) / 4
    assert peak < 8 * 1024 * 1024
    assert elapsed < 10


def test_an_oversized_metadata_header_is_refused_before_it_is_read():
    data = tgz(member("a.txt", b"x", pax_headers={"comment": "c" * (2 * 1024 * 1024)}))
    source = CountingReader(data)
    with pytest.raises(InvalidArchive) as raised:
        inspect_archive(source)
    assert raised.value.rule == "too_large"
    assert "metadata" in raised.value.message


def test_not_gzip():
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info, data = member("a.txt", b"x")
        tar.addfile(info, io.BytesIO(data))
    for data in (raw.getvalue(), b"PK\x03\x04 a zip file", b""):
        error = rejected(data, "not_gzip_tar")
        assert "gzip" in error.message


def test_gzip_but_not_tar():
    error = rejected(gzip.compress(b"hello, this is not a tar file\n" * 100), "not_gzip_tar")
    assert "tar" in error.message


def test_corrupt_and_truncated_gzip():
    good = tgz(member("a.txt", b"some text " * 1000))
    corrupt = good[:20] + bytes(b ^ 0xFF for b in good[20:60]) + good[60:]
    rejected(corrupt, "not_gzip_tar")
    rejected(good[: len(good) // 2], "not_gzip_tar")


def test_concatenated_gzip_members_are_one_stream():
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name in ("a.txt", "b.txt"):
            info, data = member(name, name.encode())
            tar.addfile(info, io.BytesIO(data))
    payload = raw.getvalue()
    data = gzip.compress(payload[:700]) + gzip.compress(payload[700:])
    assert inspect_archive(io.BytesIO(data)).entries == 2


def test_later_entries_replace_earlier_ones(tmp_path):
    data = tgz(
        member("a", type=tarfile.SYMTYPE, linkname="b"),
        member("a", b"now a file"),
        member("d", b"a file first"),
        member("d", type=tarfile.DIRTYPE),
        member("d/x.txt", b"x"),
    )
    inspect_archive(io.BytesIO(data), tmp_path)
    assert not (tmp_path / "a").is_symlink()
    assert (tmp_path / "a").read_text() == "now a file"
    assert (tmp_path / "d" / "x.txt").read_text() == "x"


def test_a_truncated_sparse_header_chain_is_not_a_tar():
    rejected(sparse_bomb(1), "not_gzip_tar")
