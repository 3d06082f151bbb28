"""How the static server maps request paths to files: index pages, clean URLs, redirects,
and every way a path could try to leave the site directory."""

from __future__ import annotations

import pytest

from chalicelib.runtimes.static_server import Resolved, content_type, resolve


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "docs").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / ".well-known").mkdir()
    (root / "index.html").write_text("home")
    (root / "docs" / "index.html").write_text("docs")
    (root / "pricing.html").write_text("pricing")
    (root / "app.js").write_text("js")
    (root / ".env").write_text("SECRET=1")
    (root / ".well-known" / "security.txt").write_text("contact")
    (tmp_path / "secret.txt").write_text("outside")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (root / "outside").symlink_to(tmp_path)
    (root / "inner-link.js").symlink_to(root / "app.js")
    return root.resolve()


@pytest.mark.parametrize(
    ("target", "served"),
    [
        ("/", "index.html"),
        ("/?utm=1", "index.html"),
        ("/docs/", "docs/index.html"),
        ("/app.js", "app.js"),
        ("/pricing", "pricing.html"),
        ("/pricing.html", "pricing.html"),
        ("/%61pp.js", "app.js"),
        ("/inner-link.js", "app.js"),
        ("/.well-known/security.txt", ".well-known/security.txt"),
        ("http://example.com/app.js", "app.js"),
    ],
)
def test_files_that_are_served(site, target, served):
    assert resolve(site, target) == Resolved(file=site / served)


def test_a_directory_without_its_slash_redirects(site):
    assert resolve(site, "/docs") == Resolved(redirect="/docs/")
    assert resolve(site, "/docs?x=1") == Resolved(redirect="/docs/")


@pytest.mark.parametrize(
    "target",
    [
        "/empty/",  # no index.html: no listing either
        "/missing",
        "/../secret.txt",
        "/docs/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/..%2fsecret.txt",
        "/docs/%2e%2e/%2e%2e/secret.txt",
        "/..\\secret.txt",
        "/escape.txt",
        "/outside/secret.txt",
        "/outside/",
        "/.env",
        "/docs/./index.html",
        "//evil.example",
        "//evil.example/",
        "/%00",
        "/%ff",
        "relative/path",
        "http://example.com/../secret.txt",
    ],
)
def test_paths_that_answer_404(site, target):
    assert resolve(site, target) == Resolved()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("module.mjs", "text/javascript; charset=utf-8"),
        ("data.json", "application/json"),
        ("logo.svg", "image/svg+xml"),
        ("photo.JPG", "image/jpeg"),
        ("font.woff2", "font/woff2"),
        ("main.wasm", "application/wasm"),
        ("blob.unknownext", "application/octet-stream"),
    ],
)
def test_content_types(name, expected, tmp_path):
    assert content_type(tmp_path / name) == expected
