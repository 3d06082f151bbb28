"""The embedded moto's HTTP server: HTTP/1.1 with keep-alive, a thread per connection.

Every AWS call of the local stack crosses it, so its cost per request is the stack's:
waitress (which served moto before) parsed each request in Python on its event loop, then
handed it to a worker thread and the answer back to the loop, about 0.8 ms of CPU per call
(profiled under load). Here the thread that reads a connection also runs the request and
writes the answer: one parse (a split of the head), no hand-offs, one write on a
`TCP_NODELAY` socket. Its clients are AWS SDKs and HTTP tools on this machine (botocore's
pools, curl or a browser uploading to a presigned URL), so it speaks what they send:
`Content-Length` and chunked bodies, `Expect: 100-continue`, `HEAD`, `Connection: close`
and HTTP/1.0. A malformed request is answered 400 (431 for a head over 64 KB) and the
connection closed. Header names with underscores (`x-amz-meta-a_b`) are kept, which waitress
dropped, except where one would pose as a framing header (`Content_Length`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

MAX_HEAD = 64 * 1024
IDLE_TIMEOUT_S = 300  # a kept-alive connection nobody uses is closed after this
_READ = 256 * 1024
# Headers that decide how a request is read or answered: only their real (hyphenated) names.
_FRAMING = frozenset(
    {"CONTENT_LENGTH", "CONTENT_TYPE", "TRANSFER_ENCODING", "EXPECT", "CONNECTION", "HOST"}
)
_DIGITS = re.compile(rb"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_REASONS = {400: "Bad Request", 431: "Request Header Fields Too Large"}


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Server:
    """`app` served on host:port once `run()` is called (it returns after `close()`)."""

    def __init__(self, app: Callable, host: str, port: int, backlog: int = 1024) -> None:
        self.app, self.host, self.port = app, host, port
        self.socket = socket.create_server((host, port), backlog=backlog)
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False

    def run(self) -> None:
        while not self._closed:
            try:
                connection, address = self.socket.accept()
            except OSError:
                if self._closed:
                    return
                time.sleep(0.05)  # a reset before accept, or out of file descriptors
                continue
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.settimeout(IDLE_TIMEOUT_S)
            with self._lock:
                self._open.add(connection)
            threading.Thread(
                target=self._serve, args=(connection, address), name="http", daemon=True
            ).start()

    def close(self) -> None:
        self._closed = True
        # shutdown() wakes the accept() that run() waits in; close() alone may not.
        for each in (self.socket, *self._connections()):
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
            each.close()

    def _connections(self) -> list[socket.socket]:
        with self._lock:
            return list(self._open)

    def _serve(self, connection: socket.socket, address: Any) -> None:
        reader = _Reader(connection)
        try:
            while self._one(connection, reader, address):
                pass
        except (OSError, ConnectionError):
            pass  # the client went away, or stayed idle too long
        finally:
            with self._lock:
                self._open.discard(connection)
            connection.close()

    def _one(self, connection: socket.socket, reader: _Reader, address: Any) -> bool:
        """Answer one request; False once the connection is to be closed."""
        try:
            head = reader.head()
            if head is None:
                return False
            environ, keep_alive = self._environ(head, address)
            continuing = environ.get("HTTP_EXPECT", "").lower() == "100-continue"
            if continuing and environ["SERVER_PROTOCOL"] == "HTTP/1.1":
                connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            environ["wsgi.input"] = io.BytesIO(reader.body(environ))
            keep_alive = keep_alive and environ.get("HTTP_CONNECTION") != "close"
        except BadRequest as refused:
            reason = _REASONS.get(refused.status, "Bad Request")
            message = str(refused).encode()
            connection.sendall(
                f"HTTP/1.1 {refused.status} {reason}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(message)}\r\nConnection: close\r\n\r\n".encode()
                + message
            )
            return False
        return self._respond(connection, environ, keep_alive)

    def _environ(self, head: bytes, address: Any) -> tuple[dict[str, Any], bool]:
        lines = head.split(b"\r\n")
        try:
            method, target, version = lines[0].decode("latin-1").split(" ")
        except ValueError:
            raise BadRequest(400, "Malformed request line") from None
        if not version.startswith("HTTP/1."):
            raise BadRequest(400, f"Unsupported HTTP version {version}")
        environ: dict[str, Any] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise BadRequest(400, "Malformed header line")
            key = name.decode("latin-1").upper().replace("-", "_")
            if b"_" in name and key in _FRAMING:
                continue  # `Content_Length` must not pass for Content-Length
            text = value.strip(b" \t").decode("latin-1")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            environ[key] = f"{environ[key]}, {text}" if key in environ else text
        path, _, query = target.partition("?")
        environ.update(
            {
                "REQUEST_METHOD": method,
                "SCRIPT_NAME": "",
                "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
                "QUERY_STRING": query,
                "REQUEST_URI": target,
                "RAW_URI": target,  # werkzeug's name for it, which moto's S3 reads
                "SERVER_NAME": self.host,
                "SERVER_PORT": str(self.port),
                "SERVER_PROTOCOL": version,
                "REMOTE_ADDR": address[0] if address else "",
                "wsgi.version": (1, 0),
                "wsgi.url_scheme": "http",
                "wsgi.errors": sys.stderr,
                "wsgi.multithread": True,
                "wsgi.multiprocess": False,
                "wsgi.run_once": False,
            }
        )
        connection_header = environ.get("HTTP_CONNECTION", "").lower()
        if version == "HTTP/1.0":
            keep_alive = "keep-alive" in connection_header
        else:
            keep_alive = "close" not in connection_header
        return environ, keep_alive

    def _respond(self, connection: socket.socket, environ: dict, keep_alive: bool) -> bool:
        """Run the app and send its answer; whether the connection stays open."""
        started: list[Any] = []

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            if exc_info and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return lambda data: None  # PEP 3333's write(); nothing here uses it

        try:
            result: Iterable[bytes] = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            return self._send(connection, environ, keep_alive, *started, body)
        except (OSError, ConnectionError):
            raise
        except Exception:  # the app failed (or answered what HTTP can't carry): a 500
            logging.getLogger(__name__).exception(
                "%s %s failed", environ["REQUEST_METHOD"], environ["PATH_INFO"]
            )
            failed = [("Content-Type", "text/plain")]
            return self._send(
                connection,
                environ,
                False,
                "500 Internal Server Error",
                failed,
                b"Internal Server Error",
            )

    def _send(
        self,
        connection: socket.socket,
        environ: dict,
        keep_alive: bool,
        status: str,
        headers: list,
        body: bytes,
    ) -> bool:
        lines = [f"HTTP/1.1 {status}\r\n"]
        length_given = False
        for name, value in headers:
            lowered = name.lower()
            if lowered == "content-length":
                length_given = True
            elif lowered in ("connection", "transfer-encoding"):
                continue  # this server decides both
            lines.append(f"{name}: {value}\r\n")
        if status.startswith(("1", "204", "304")):
            body = b""
        elif not length_given:
            lines.append(f"Content-Length: {len(body)}\r\n")
        if not keep_alive:
            lines.append("Connection: close\r\n")
        elif environ["SERVER_PROTOCOL"] == "HTTP/1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        connection.sendall(head if environ["REQUEST_METHOD"] == "HEAD" else head + body)
        return keep_alive


class _Reader:
    """A connection's bytes, read ahead: request heads and bodies, in turn."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.buffer = bytearray()

    def _more(self) -> bool:
        chunk = self.connection.recv(_READ)
        self.buffer += chunk
        return bool(chunk)

    def _take(self, size: int, skip: int = 0) -> bytes:
        data = bytes(self.buffer[:size])
        del self.buffer[: size + skip]
        return data

    def head(self) -> bytes | None:
        """The next request's head (request line and headers), None at a clean close."""
        while self.buffer[:2] == b"\r\n":  # a stray CRLF between requests is allowed
            del self.buffer[:2]
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD:
                raise BadRequest(431, "Request head too large")
            if not self._more():
                if self.buffer.strip():
                    raise BadRequest(400, "Incomplete request head")
                return None
        if end > MAX_HEAD:
            raise BadRequest(431, "Request head too large")
        return self._take(end, skip=4)

    def exactly(self, size: int) -> bytes:
        if len(self.buffer) >= size:
            return self._take(size)
        parts, missing = [bytes(self.buffer)], size - len(self.buffer)
        self.buffer.clear()
        while missing > 0:
            chunk = self.connection.recv(max(_READ, min(missing, 4 * 1024 * 1024)))
            if not chunk:
                raise ConnectionError("closed mid-body")
            parts.append(chunk)
            missing -= len(chunk)
        data = b"".join(parts)
        if missing < 0:  # the next request's first bytes came with it
            self.buffer += data[size:]
        return data[:size]

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD:
                raise BadRequest(400, "Malformed chunk")
            if not self._more():
                raise ConnectionError("closed mid-body")
        return self._take(end, skip=2)

    def body(self, environ: dict[str, Any]) -> bytes:
        coding = environ.pop("HTTP_TRANSFER_ENCODING", None)
        if coding is not None:
            if coding.strip().lower() != "chunked":
                raise BadRequest(400, f"Unsupported Transfer-Encoding {coding}")
            if "CONTENT_LENGTH" in environ:
                # Both framings: read it chunked, and close after (RFC 9112, 6.1).
                environ["HTTP_CONNECTION"] = "close"
            data = self.chunked()
            environ["CONTENT_LENGTH"] = str(len(data))
            return data
        length = environ.get("CONTENT_LENGTH", "")
        if not length:
            return b""
        if not _DIGITS.fullmatch(length.encode("latin-1")):
            raise BadRequest(400, "Malformed Content-Length")
        return self.exactly(int(length))

    def chunked(self) -> bytes:
        parts = []
        while True:
            size_text = self.line().split(b";", 1)[0].strip()
            if not _HEX.fullmatch(size_text):
                raise BadRequest(400, "Malformed chunk size")
            size = int(size_text, 16)
            if size == 0:
                while self.line():  # trailers, up to the blank line
                    pass
                return b"".join(parts)
            parts.append(self.exactly(size))
            if self.exactly(2) != b"\r\n":
                raise BadRequest(400, "Malformed chunk")
