"""A webhook receiver for the tests: an HTTP server on a free loopback port that records
every request and answers as the test scripts it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0


class Receiver:
    """`answer(hit_number)` says how to answer each request (default: 200 "ok")."""

    def __init__(self, answer: Callable[[int], Reply] | None = None) -> None:
        self.hits: list[Hit] = []
        self.answer = answer or (lambda _n: Reply())
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                hit = Hit(self.path, headers, self.rfile.read(length))
                with receiver._lock:
                    receiver.hits.append(hit)
                    number = len(receiver.hits)
                reply = receiver.answer(number)
                if reply.hang_s:
                    time.sleep(reply.hang_s)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                # The sender may stop reading at its cap and close.
                with contextlib.suppress(OSError):
                    self.wfile.write(reply.body)

            def log_message(self, *args) -> None:
                """Quiet."""

        return Handler

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[Hit]:
        deadline = time.monotonic() + timeout_s
        while len(self.hits) < count:
            assert time.monotonic() < deadline, f"{len(self.hits)} hits, wanted {count}"
            time.sleep(0.05)
        return list(self.hits)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
