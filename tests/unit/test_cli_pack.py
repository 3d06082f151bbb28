"""The CLI's packing: which files go in (gitignore rules) and the archive it writes."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from shipyard_cli.ignore import Rules, parse_line
from shipyard_cli.pack import PackError, collect, pack


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def packed_names(root: Path) -> list[str]:
    return [entry.path for entry in collect(root) if entry.kind != "dir"]


def excluded(patterns: str, path: str, is_dir: bool = False) -> bool:
    rules = Rules((("", tuple(p for p in map(parse_line, patterns.splitlines()) if p)),))
    return rules.excluded(path, is_dir)


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "expected"),
    [
        # `*` and `?` stay within one path segment; a pattern without a slash matches at any depth.
        ("*.log", "debug.log", False, True),
        ("*.log", "logs/deep/debug.log", False, True),
        ("*.log", "debug.log.txt", False, False),
        ("debug?.log", "debug1.log", False, True),
        ("debug?.log", "debug/.log", False, False),
        ("logs/*.log", "logs/a/b.log", False, False),
        ("[a-c].txt", "b.txt", False, True),
        ("[!a-c].txt", "b.txt", False, False),
        ("[!a-c].txt", "d.txt", False, True),
        # A leading or middle slash anchors to the ignore file's directory.
        ("/build", "build", True, True),
        ("/build", "src/build", True, False),
        ("doc/frotz", "doc/frotz", False, True),
        ("doc/frotz", "a/doc/frotz", False, False),
        ("build", "src/build", True, True),
        # A trailing slash matches directories only.
        ("tmp/", "tmp", True, True),
        ("tmp/", "tmp", False, False),
        ("tmp/", "a/tmp", True, True),
        # `**` spans directories.
        ("**/cache", "cache", True, True),
        ("**/cache", "a/b/cache", True, True),
        ("a/**/b", "a/b", False, True),
        ("a/**/b", "a/x/y/b", False, True),
        ("a/**/b", "c/a/x/b", False, False),
        ("out/**", "out/x/y.js", False, True),
        ("out/**", "out", True, False),
        ("a**b", "a/b", False, False),
        ("a**b", "axxb", False, True),
        # Escapes, comments and blank lines.
        ("\\#notes", "#notes", False, True),
        ("# comment", "# comment", False, False),
        ("\\!important", "!important", False, True),
        ("trailing\\ ", "trailing ", False, True),
        ("trailing   ", "trailing", False, True),
    ],
)
def test_gitignore_pattern_semantics(pattern, path, is_dir, expected):
    assert excluded(pattern, path, is_dir) is expected


def test_negation_re_includes_and_the_last_match_wins():
    patterns = "*.log\n!keep.log\n"
    assert excluded(patterns, "a.log")
    assert not excluded(patterns, "keep.log")
    assert not excluded(patterns, "sub/keep.log")
    assert excluded("!keep.log\n*.log\n", "keep.log")


def test_nothing_under_an_excluded_directory_comes_back(tmp_path):
    # Given: a directory excluded, and a negation for a file inside it
    make_tree(
        tmp_path,
        {".gitignore": "build/\n!build/keep.txt\n", "build/keep.txt": "x", "app.py": "x"},
    )

    # Then: as in git, the walk never enters build/
    assert packed_names(tmp_path) == [".gitignore", "app.py"]


def test_nested_ignore_files_are_relative_to_their_directory_and_override_parents(tmp_path):
    make_tree(
        tmp_path,
        {
            ".gitignore": "*.tmp\n/top-only.txt\n",
            "top-only.txt": "x",
            "sub/top-only.txt": "kept: the anchor is the root's",
            "sub/.gitignore": "/local.txt\n!wanted.tmp\n",
            "sub/local.txt": "x",
            "sub/deeper/local.txt": "kept: anchored to sub/",
            "sub/wanted.tmp": "re-included by the deeper file",
            "sub/other.tmp": "x",
        },
    )

    assert packed_names(tmp_path) == [
        ".gitignore",
        "sub/.gitignore",
        "sub/deeper/local.txt",
        "sub/top-only.txt",
        "sub/wanted.tmp",
    ]


def test_shipyardignore_beats_gitignore(tmp_path):
    # Given: git ignores the built output, Shipyard should upload it
    make_tree(
        tmp_path,
        {
            ".gitignore": "dist/\n",
            ".shipyardignore": "!dist/\nREADME.md\n",
            "dist/index.html": "<h1>hi</h1>",
            "README.md": "x",
        },
    )

    assert packed_names(tmp_path) == [".gitignore", ".shipyardignore", "dist/index.html"]


def test_always_excluded_directories_cannot_be_re_included(tmp_path):
    make_tree(
        tmp_path,
        {
            ".shipyardignore": "!node_modules/\n!.venv\n",
            ".git/HEAD": "ref",
            "node_modules/left-pad/index.js": "x",
            "web/node_modules/x.js": "x",
            ".venv/pyvenv.cfg": "x",
            "pkg/__pycache__/m.cpython-311.pyc": "x",
            ".shipyard/project.json": "{}",
            "pkg/m.py": "x",
        },
    )

    assert packed_names(tmp_path) == [".shipyardignore", "pkg/m.py"]


def test_archive_holds_the_files_with_their_content_and_modes(tmp_path):
    # Given
    make_tree(
        tmp_path / "app",
        {"index.html": "<h1>v1</h1>", "bin/start": "#!/bin/sh\n", "empty/": "", ".env": "A=1"},
    )
    (tmp_path / "app/bin/start").chmod(0o700)
    (tmp_path / "app/link.html").symlink_to("index.html")
    out = io.BytesIO()

    # When
    packed = pack(tmp_path / "app", out)

    # Then
    data = out.getvalue()
    assert packed.size == len(data)
    assert packed.sha256 == hashlib.sha256(data).hexdigest()
    assert packed.files == 4
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        members = {m.name: m for m in archive.getmembers()}
        assert sorted(members) == [".env", "bin", "bin/start", "empty", "index.html", "link.html"]
        assert archive.extractfile("index.html").read() == b"<h1>v1</h1>"
        assert members["bin/start"].mode == 0o755
        assert members["index.html"].mode == 0o644
        assert members["empty"].isdir()
        assert members["link.html"].issym()
        assert members["link.html"].linkname == "index.html"
        assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members.values())


def test_archive_is_deterministic(tmp_path):
    # Given: the same files, created in different orders at different times
    files = {f"dir{i}/file{j}.txt": f"{i}-{j}" for i in range(3) for j in range(3)}
    first = make_tree(tmp_path / "a", files)
    second = make_tree(tmp_path / "b", dict(reversed(list(files.items()))))
    os.utime(second / "dir1/file1.txt", (1, 1))

    # When
    one, two = io.BytesIO(), io.BytesIO()
    packed_one, packed_two = pack(first, one), pack(second, two)

    # Then
    assert one.getvalue() == two.getvalue()
    assert packed_one.sha256 == packed_two.sha256


def test_a_symlink_leaving_the_directory_is_refused(tmp_path):
    make_tree(tmp_path / "app", {"index.html": "x"})
    (tmp_path / "secret").write_text("x")
    (tmp_path / "app/escape").symlink_to("../secret")

    with pytest.raises(PackError, match=r"escape -> \.\./secret points outside"):
        pack(tmp_path / "app", io.BytesIO())


def test_an_ignored_escaping_symlink_is_fine(tmp_path):
    make_tree(tmp_path / "app", {"index.html": "x", ".gitignore": "escape\n"})
    (tmp_path / "app/escape").symlink_to("/etc/passwd")

    assert packed_names(tmp_path / "app") == [".gitignore", "index.html"]


def test_nothing_to_deploy_is_an_error(tmp_path):
    make_tree(tmp_path, {".git/HEAD": "x", "node_modules/x.js": "x"})

    with pytest.raises(PackError, match="nothing to deploy"):
        pack(tmp_path, io.BytesIO())


def test_a_missing_directory_is_an_error(tmp_path):
    with pytest.raises(PackError, match="is not a directory"):
        pack(tmp_path / "nope", io.BytesIO())
