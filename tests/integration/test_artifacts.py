"""Artifacts: packed from a built tree, stored in S3, unpacked through the archive checks."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

import pytest

from chalicelib.archive.artifacts import (
    ArtifactError,
    artifact_key,
    download_and_unpack,
    pack_and_upload,
)
from chalicelib.archive.inspect import InvalidArchive
from chalicelib.aws.clients import client
from chalicelib.core.settings import get_settings

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture
def app(tmp_path):
    """A built node app: an executable, a .bin symlink, a hard link, a .git directory."""
    root = tmp_path / "app"
    (root / "node_modules" / "tool" / "bin").mkdir(parents=True)
    (root / "node_modules" / ".bin").mkdir()
    (root / "dist").mkdir()
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: main")
    (root / "package.json").write_text("{}")
    (root / "dist" / "index.html").write_text("<h1>built</h1>")
    tool = root / "node_modules" / "tool" / "bin" / "tool.js"
    tool.write_text("#!/usr/bin/env node\n")
    tool.chmod(0o755)
    os.symlink("../tool/bin/tool.js", root / "node_modules" / ".bin" / "tool")
    os.link(root / "package.json", root / "dist" / "package.json")
    return root


def test_round_trip_keeps_links_modes_and_leaves_out_git(app, tmp_path):
    key = artifact_key("prj_1", "dep_1")
    assert key == "artifacts/prj_1/dep_1/artifact.tar.gz"

    pack_and_upload(app, key, exclude=(".git",))
    out = tmp_path / "out"
    download_and_unpack(key, out)

    assert sorted(p.name for p in out.iterdir()) == ["dist", "node_modules", "package.json"]
    link = out / "node_modules" / ".bin" / "tool"
    assert os.readlink(link) == "../tool/bin/tool.js"
    assert link.read_text() == "#!/usr/bin/env node\n"
    assert os.access(out / "node_modules" / "tool" / "bin" / "tool.js", os.X_OK)
    assert (out / "dist" / "package.json").stat().st_ino == (out / "package.json").stat().st_ino


def test_a_subdirectory_is_packed_at_its_path(app, tmp_path):
    key = artifact_key("prj_1", "dep_2")
    pack_and_upload(app, key, include="dist")
    out = tmp_path / "out"
    download_and_unpack(key, out)
    assert [p.name for p in out.iterdir()] == ["dist"]
    assert (out / "dist" / "index.html").read_text() == "<h1>built</h1>"


def test_a_link_leaving_the_app_is_refused_at_packing(app):
    os.symlink("/etc/passwd", app / "dist" / "secrets")
    with pytest.raises(ArtifactError) as raised:
        pack_and_upload(app, artifact_key("prj_1", "dep_3"))
    assert "dist/secrets" in str(raised.value)


def test_a_missing_output_directory_is_refused(app):
    with pytest.raises(ArtifactError) as raised:
        pack_and_upload(app, artifact_key("prj_1", "dep_4"), include="build")
    assert "'build'" in str(raised.value)


def test_a_hostile_artifact_is_refused_and_its_destination_removed(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("ok.txt"), io.BytesIO(b""))
        evil = tarfile.TarInfo("evil")
        evil.type = tarfile.SYMTYPE
        evil.linkname = "/root"
        tar.addfile(evil)
    key = artifact_key("prj_1", "dep_5")
    client("s3").put_object(
        Bucket=get_settings().bucket, Key=key, Body=gzip.compress(raw.getvalue())
    )

    with pytest.raises(InvalidArchive) as raised:
        download_and_unpack(key, tmp_path / "out")
    assert raised.value.rule == "link_escape"
    assert not (tmp_path / "out").exists()
