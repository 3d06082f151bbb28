"""The static file server that serves a static deployment (locally and in its Lambda image).

`python -m chalicelib.runtimes.static_server --dir D --port P` serves the files under D:
`index.html` for a directory, `/about` from `about.html` when there is no `about`, the
site's own `404.html` (or a small built-in page) with status 404, ETag revalidation, and
no directory listings. A request never reaches outside D: `..` segments, encoded or not,
symlinks that leave D and dotfiles (except `.well-known`) all answer 404.

Standard library only, so the same file runs inside a deployment's container image.
"""

from __future__ import annotations

import argparse
import mimetypes
import os
import shutil
import sys
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

# mimetypes reads the host's tables, which differ between machines; web types are pinned here.
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".xml": "application/xml",
    ".csv": "text/csv; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".wasm": "application/wasm",
    ".pdf": "application/pdf",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
}

NOT_FOUND_PAGE = (
    b'<!doctype html>\n<html><head><meta charset="utf-8"><title>404 Not Found</title></head>'
    b"<body><h1>404 Not Found</h1><p>There is no page at this address.</p></body></html>\n"
)


def content_type(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


@dataclass(frozen=True)
class Resolved:
    """What a request path maps to: a file to serve, a redirect, or neither (404)."""

    file: Path | None = None
    redirect: str | None = None


def _allowed_segment(segment: str) -> bool:
    if segment in ("", ".", ".."):
        return False
    if "\\" in segment or "\x00" in segment:
        return False
    return not segment.startswith(".") or segment == ".well-known"


def _inside(root: Path, candidate: Path) -> Path | None:
    """The real path of candidate if it exists and stays under root (symlinks followed)."""
    try:
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return real if real == root or real.is_relative_to(root) else None


def resolve(root: Path, request_target: str) -> Resolved:
    """Map a request target (path and query, as sent) to a file under root (already resolved)."""
    if request_target.startswith("/"):
        raw_path = request_target.split("?", 1)[0].split("#", 1)[0]
    else:
        raw_path = urlsplit(request_target).path
    try:
        decoded = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        return Resolved()
    segments = decoded.split("/")
    inner = segments[1:-1]
    last = segments[-1] if len(segments) > 1 else ""
    if not decoded.startswith("/") or not all(_allowed_segment(s) for s in inner):
        return Resolved()
    if last and not _allowed_segment(last):
        return Resolved()
    parts = [*inner, last] if last else inner
    target = _inside(root, root.joinpath(*parts))
    if target is not None and target.is_dir():
        if last:
            return Resolved(redirect="/" + "/".join(quote(part) for part in parts) + "/")
        index = _inside(root, target / "index.html")
        return Resolved(file=index) if index is not None and index.is_file() else Resolved()
    if target is not None and target.is_file():
        return Resolved(file=target)
    if last:
        page = _inside(root, root.joinpath(*inner, last + ".html"))
        if page is not None and page.is_file():
            return Resolved(file=page)
    return Resolved()


def _etag(stat: os.stat_result) -> str:
    return f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


class StaticHandler(BaseHTTPRequestHandler):
    server_version = "ShipyardStatic/1"
    protocol_version = "HTTP/1.1"
    root: Path

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _not_allowed(self) -> None:
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _not_allowed

    def _serve(self, send_body: bool) -> None:
        resolved = resolve(self.root, self.path)
        if resolved.redirect is not None:
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", resolved.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif resolved.file is not None:
            self._send_file(resolved.file, HTTPStatus.OK, send_body)
        else:
            self._send_not_found(send_body)

    def _send_not_found(self, send_body: bool) -> None:
        page = _inside(self.root, self.root / "404.html")
        if page is not None and page.is_file():
            self._send_file(page, HTTPStatus.NOT_FOUND, send_body)
            return
        self.send_response(HTTPStatus.NOT_FOUND)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(NOT_FOUND_PAGE)))
        self.end_headers()
        if send_body:
            self.wfile.write(NOT_FOUND_PAGE)

    def _send_file(self, path: Path, status: HTTPStatus, send_body: bool) -> None:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            etag = _etag(stat)
            if status == HTTPStatus.OK and _matches(self.headers.get("If-None-Match"), etag):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(status)
            self.send_header("Content-Type", content_type(path))
            self.send_header("Content-Length", str(stat.st_size))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", self.date_time_string(int(stat.st_mtime)))
            # Files change with each deployment under the same names: revalidate every time.
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if send_body:
                shutil.copyfileobj(handle, self.wfile)

    def log_message(self, format: str, *args: object) -> None:
        # One access line per request on stdout: it becomes the deployment's log.
        print(f"{self.address_string()} {format % args}", flush=True)


def serve(directory: Path, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A server bound to host:port serving directory; the caller runs serve_forever()."""
    root = directory.resolve(strict=True)
    if not root.is_dir():
        raise NotADirectoryError(str(root))
    handler = type("BoundStaticHandler", (StaticHandler,), {"root": root})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a static site directory over HTTP.")
    parser.add_argument("--dir", required=True, type=Path, help="the directory to serve")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in images)")
    args = parser.parse_args(argv)
    try:
        server = serve(args.dir, args.port, args.host)
    except OSError as error:
        print(f"static server cannot start: {error}", file=sys.stderr, flush=True)
        return 1
    root = server.RequestHandlerClass.root
    print(f"serving {root} on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
