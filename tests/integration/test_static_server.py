"""The static server as a real process (`python -m chalicelib.runtimes.static_server`) on a
free port, spoken to with raw HTTP so that hostile paths reach it exactly as written."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chalicelib.host.processes import free_port

REPO = Path(__file__).resolve().parents[2]


def server_command(directory: Path, port: int) -> list[str]:
    module = "chalicelib.runtimes.static_server"
    return [sys.executable, "-m", module, "--dir", str(directory), "--port", str(port)]


def serve(directory: Path):
    port = free_port()
    process = subprocess.Popen(
        server_command(directory, port),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, port
        except ConnectionRefusedError:
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.05)
    raise AssertionError("the static server did not start")


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "about").mkdir(parents=True)
    (root / "assets").mkdir()
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "about" / "index.html").write_text("<h1>about</h1>")
    (root / "style.css").write_text("body{}")
    (root / "logo.svg").write_text("<svg/>")
    (root / "assets" / "a.png").write_bytes(b"\x89PNG")
    (root / ".env").write_text("SECRET=dotfile")
    (tmp_path / "secret.txt").write_text("TOP-SECRET")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    return root


@pytest.fixture
def server(site):
    process, port = serve(site)
    yield port
    process.terminate()
    process.wait(timeout=5)


def request(port: int, target: str, method: str = "GET", headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_pages_and_assets_with_their_content_types(server):
    status, headers, body = request(server, "/")
    assert (status, body) == (200, b"<h1>home</h1>")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Length"] == str(len(body))
    assert request(server, "/about/")[2] == b"<h1>about</h1>"
    assert request(server, "/style.css")[1]["Content-Type"] == "text/css; charset=utf-8"
    assert request(server, "/logo.svg")[1]["Content-Type"] == "image/svg+xml"
    assert request(server, "/assets/a.png")[1]["Content-Type"] == "image/png"


def test_directory_without_slash_redirects_and_no_listing_is_ever_shown(server):
    status, headers, _ = request(server, "/about")
    assert status == 301 and headers["Location"] == "/about/"
    status, _, body = request(server, "/assets/")
    assert status == 404 and b"a.png" not in body


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/about/..%2f..%2fsecret.txt",
        "/%2E%2E%2F%2E%2E%2Fsecret.txt",
        "/escape.txt",
        "/.env",
        "//secret.txt",
    ],
)
def test_nothing_outside_the_site_or_hidden_is_served(server, target):
    status, _, body = request(server, target)
    assert status == 404
    assert b"TOP-SECRET" not in body and b"SECRET=dotfile" not in body


def test_built_in_404_page_then_the_sites_own(server, site):
    status, headers, body = request(server, "/nope")
    assert status == 404 and b"404 Not Found" in body
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    (site / "404.html").write_text("<h1>custom missing page</h1>")
    assert request(server, "/nope")[:3:2] == (404, b"<h1>custom missing page</h1>")


def test_head_etag_and_methods(server):
    status, headers, body = request(server, "/style.css", method="HEAD")
    assert (status, body, headers["Content-Length"]) == (200, b"", "6")
    assert request(server, "/style.css", headers={"If-None-Match": headers["ETag"]})[0] == 304
    status, headers, _ = request(server, "/", method="POST", headers={"Content-Length": "0"})
    assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_a_missing_directory_is_a_start_failure(tmp_path):
    result = subprocess.run(
        server_command(tmp_path / "x", free_port()),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 1
    assert "static server cannot start" in result.stderr
