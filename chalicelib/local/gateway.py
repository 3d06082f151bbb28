"""Local stand-in for API Gateway: chalice's LocalGateway behind an HTTP/1.1 server that
answers every request in the contract's envelope with an X-Request-ID: any method goes to
the app (405 with `Allow` where the path lacks it), a path no route matches is 404 (on AWS,
infra/ maps API Gateway's own MISSING_AUTHENTICATION_TOKEN response to the same envelope),
a request the HTTP parser refuses is a 4xx envelope, not http.server's HTML page. There are
no CORS preflight answers of its own.

Each response leaves in one write on a TCP_NODELAY socket: headers and body written apart
meet the client's delayed ACK under Nagle's algorithm, about 40 ms per keep-alive request.

Requests take turns (`Turns`), as Lambda runs a function's invocations on a bounded number
of instances: a few run the app at once, in the order they arrived, and the rest wait in
line. Without it every request's thread contends for the process's GIL at once, and
CPython hands the GIL to whichever waiting thread the OS wakes, so a request that needs it
back after each AWS call could lose that draw again and again: under load, a request's
latency was a lottery (p99 three times the mean; docs/reliability.md).
"""

from __future__ import annotations

import collections
import json
import secrets
import threading
import time
from http import HTTPStatus
from typing import Any

from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalGateway, ThreadedHTTPServer

# What http.server's own refusals are in the contract's codes.
_CODES = {
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
}


def error_response(status: int, code: str, message: str) -> dict[str, Any]:
    """A response of the gateway itself (no route ran), in LocalGateway's shape."""
    request_id = "req_" + secrets.token_hex(12)
    body = {"error": {"code": code, "message": message, "request_id": request_id}}
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "X-Request-ID": request_id},
        "multiValueHeaders": {},
        "body": json.dumps(body),
    }


def not_found_response(path: str) -> dict[str, Any]:
    return error_response(404, "not_found", f"No route matches {path.split('?')[0]}")


class _Waiter:
    """One request in line: `woken` is set when it is let in, and when it becomes the head
    of the line (which watches the clock for the oldest turn's overtime)."""

    __slots__ = ("let_in", "woken")

    def __init__(self) -> None:
        self.let_in = False
        self.woken = threading.Event()


class Turns:
    """At most `slots` requests run at once, let in in the order they arrived.

    A request that has run `overtime_s` stops holding its slot: it is waiting (a long-poll,
    an event stream) or long (a deployment's upload), and a few of those must not hold up
    every request behind them. Its slot goes to the next in line.
    """

    def __init__(self, slots: int, overtime_s: float) -> None:
        if slots < 1:
            raise ValueError(f"at least one request must run at a time, not {slots}")
        self._slots, self._overtime_s = slots, overtime_s
        self._lock = threading.Lock()
        self._running: dict[_Waiter, float] = {}  # when each turn began, oldest first
        self._line: collections.deque[_Waiter] = collections.deque()
        self._head: _Waiter | None = None  # the head of the line last woken as such

    def take(self) -> object:
        """Wait for a turn; hand it back with `give_back`."""
        waiter = _Waiter()
        with self._lock:
            self._line.append(waiter)
            self._let_in()
        try:
            while True:
                with self._lock:
                    if waiter.let_in:
                        return waiter
                    # Only the head of the line waits with a timeout: the oldest turn's
                    # overtime, which may make room for it. The rest wait to be woken.
                    head = self._line[0] is waiter
                    timeout = self._overtime_in() if head else None
                    waiter.woken.clear()
                waiter.woken.wait(timeout)
                with self._lock:
                    self._let_in()
        except BaseException:
            with self._lock:
                if waiter.let_in:
                    self._running.pop(waiter, None)
                else:
                    self._line.remove(waiter)
                self._let_in()
            raise

    def give_back(self, turn: object) -> None:
        with self._lock:
            self._running.pop(turn, None)  # an overtime turn has already made room
            self._let_in()

    def _let_in(self) -> None:
        now = time.monotonic()
        while self._running:
            oldest, began = next(iter(self._running.items()))
            if now - began < self._overtime_s:
                break
            del self._running[oldest]
        while self._line and len(self._running) < self._slots:
            waiter = self._line.popleft()
            waiter.let_in = True
            self._running[waiter] = now
            waiter.woken.set()
        head = self._line[0] if self._line else None
        if head is not None and head is not self._head:
            head.woken.set()  # a new head: it now watches the clock
        self._head = head

    def _overtime_in(self) -> float | None:
        if not self._running:
            return None
        began = next(iter(self._running.values()))
        return max(0.0, began + self._overtime_s - time.monotonic()) + 0.001


class ShipyardGateway(LocalGateway):
    def __init__(self, app: Any, config: Config, turns: Turns | None = None) -> None:
        super().__init__(app, config)
        self._turns = turns

    def handle_request(self, method: str, path: str, headers: Any, body: Any) -> Any:
        try:
            self.event_converter._route_matcher.match_route(path)
        except ValueError:
            return not_found_response(path)
        if self._turns is None:
            return super().handle_request(method, path, headers, body)
        turn = self._turns.take()
        try:
            return super().handle_request(method, path, headers, body)
        finally:
            self._turns.give_back(turn)

    def _has_user_defined_options_method(self, lambda_event: Any) -> bool:
        # Shipyard configures no CORS, so an OPTIONS goes to the app like any method it
        # lacks (405 in the envelope, with X-Request-ID), not to a CORS preflight stand-in.
        return True


class ShipyardServer(ThreadedHTTPServer):
    # http.server's default backlog of 5 resets connections that arrive together;
    # API Gateway takes bursts of clients, so the local stand-in does too.
    request_queue_size = 256


class ShipyardRequestHandler(ChaliceRequestHandler):
    disable_nagle_algorithm = True
    # A request line without a version is answered like any other (status line, headers
    # and the envelope), not with HTTP/0.9's bare body.
    default_request_version = "HTTP/1.1"
    local_gateway: ShipyardGateway

    def __getattr__(self, name: str) -> Any:
        # http.server answers a method without a do_<METHOD> with an HTML 501; every
        # method goes to the app instead, which knows which ones each path has.
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """http.server's refusals (a malformed request line, headers too long, ...)."""
        self.close_connection = True
        # Each of them is about the request (its syntax, size or HTTP version).
        status = HTTPStatus(code)
        response = error_response(code, _CODES.get(status, "bad_request"), message or status.phrase)
        self._send_http_response(code, response["headers"], response["body"])

    def _send_http_response(self, code: int, headers: Any, body: str | bytes | None) -> None:
        payload = body.encode() if isinstance(body, str) else body or b""
        self.send_response(code)
        self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        for name, value in headers.items():
            for each in value if isinstance(value, list) else [value]:
                self.send_header(name, each)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        # Status line, headers and body in one write (see the module docstring); a HEAD
        # answer has the headers alone.
        self._headers_buffer.append(b"\r\n")
        if getattr(self, "command", None) != "HEAD":
            self._headers_buffer.append(payload)
        self.flush_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """The app logs each request itself, as JSON."""


def handler_class(
    app: Any, config: Config, turns: Turns | None = None
) -> type[ShipyardRequestHandler]:
    gateway = ShipyardGateway(app, config, turns)

    class Handler(ShipyardRequestHandler):
        def __init__(self, request, client_address, server, app_object=None, config=None):
            self.local_gateway = gateway
            ChaliceRequestHandler.__bases__[0].__init__(self, request, client_address, server)

    return Handler
