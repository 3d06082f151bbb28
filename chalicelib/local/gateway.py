"""Local stand-in for API Gateway: chalice's LocalGateway behind an HTTP/1.1 server that
answers every request in the contract's envelope with an X-Request-ID: any method goes to
the app (405 with `Allow` where the path lacks it), a path no route matches is 404 (on AWS,
infra/ maps API Gateway's own MISSING_AUTHENTICATION_TOKEN response to the same envelope),
a request the HTTP parser refuses is a 4xx envelope, not http.server's HTML page. There are
no CORS preflight answers of its own.

Each response leaves in one write on a TCP_NODELAY socket: headers and body written apart
meet the client's delayed ACK under Nagle's algorithm, about 40 ms per keep-alive request.
"""

from __future__ import annotations

import json
import secrets
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


class ShipyardGateway(LocalGateway):
    def handle_request(self, method: str, path: str, headers: Any, body: Any) -> Any:
        try:
            self.event_converter._route_matcher.match_route(path)
        except ValueError:
            return not_found_response(path)
        return super().handle_request(method, path, headers, body)

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


def handler_class(app: Any, config: Config) -> type[ShipyardRequestHandler]:
    gateway = ShipyardGateway(app, config)

    class Handler(ShipyardRequestHandler):
        def __init__(self, request, client_address, server, app_object=None, config=None):
            self.local_gateway = gateway
            ChaliceRequestHandler.__bases__[0].__init__(self, request, client_address, server)

    return Handler
