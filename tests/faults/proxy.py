"""A fault-injecting HTTP proxy in front of a moto server: the local stack's AWS endpoint
points at it, so a test can make "AWS" answer 500, stall, or hold one kind of call (e.g.
StartExecution) until it lets it go, all on loopback.

A rule matches a request by substrings each found in its target (the X-Amz-Target header,
or the method and path for S3 and the query protocols) or in its body.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "content-length"}


@dataclass
class Rule:
    """What to do with the matching requests: "error" answers 500 (an InternalFailure) without
    forwarding; "stall" forwards nothing and answers nothing until the rule is removed, then
    drops the connection; "hold" keeps the request until the rule is removed, then forwards it."""

    action: str
    match: tuple[str, ...] = ()
    released: threading.Event = field(default_factory=threading.Event)
    hits: int = 0

    def matches(self, target: str, body: bytes) -> bool:
        """Every substring of `match` is in the request's target or its body."""
        return all(part in target or part.encode() in body for part in self.match)


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                proxy._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self.clear()
        self._server.shutdown()
        self._server.server_close()

    def add(self, action: str, *match: str) -> Rule:
        """Apply `action` to the requests that match (every one, without `match`)."""
        rule = Rule(action, match)
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule: Rule) -> None:
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)
        rule.released.set()

    def clear(self) -> None:
        with self._lock:
            rules, self._rules = self._rules, []
        for rule in rules:
            rule.released.set()

    def wait_for_hit(self, rule: Rule, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while rule.hits == 0:
            assert time.monotonic() < deadline, f"no request matched {rule.match!r}"
            time.sleep(0.05)

    def _rule_for(self, target: str, body: bytes) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(target, body):
                    rule.hits += 1
                    return rule
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        body = _read_body(handler)
        target = handler.headers.get("X-Amz-Target") or f"{handler.command} {handler.path}"
        rule = self._rule_for(target, body)
        if rule is not None and rule.action == "error":
            payload = b'{"__type":"InternalFailure","message":"injected by the fault proxy"}'
            handler.send_response(500)
            handler.send_header("Content-Type", "application/x-amz-json-1.0")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        if rule is not None:
            rule.released.wait(120)
            if rule.action == "stall":
                handler.close_connection = True
                return
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=120)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP}
            headers["Content-Length"] = str(len(body))
            upstream.request(handler.command, handler.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            handler.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in _HOP:
                    handler.send_header(name, value)
            # A HEAD's answer carries the length of the body it describes.
            length = response.getheader("Content-Length") if handler.command == "HEAD" else None
            handler.send_header("Content-Length", length or str(len(payload)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(payload)
        except OSError:
            handler.close_connection = True
        finally:
            upstream.close()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""
