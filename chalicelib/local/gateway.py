"""Local stand-in for API Gateway: chalice's LocalGateway, with the contract's 404
envelope for paths no route matches (on AWS, infra/ maps API Gateway's own
MISSING_AUTHENTICATION_TOKEN response to the same envelope), and no CORS preflight
answers of its own."""

from __future__ import annotations

import json
import secrets
from typing import Any

from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalGateway, ThreadedHTTPServer


def not_found_response(path: str) -> dict[str, Any]:
    request_id = "req_" + secrets.token_hex(12)
    body = {
        "error": {
            "code": "not_found",
            "message": f"No route matches {path.split('?')[0]}",
            "request_id": request_id,
        }
    }
    return {
        "statusCode": 404,
        "headers": {"Content-Type": "application/json", "X-Request-ID": request_id},
        "multiValueHeaders": {},
        "body": json.dumps(body),
    }


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


def handler_class(app: Any, config: Config) -> type[ChaliceRequestHandler]:
    gateway = ShipyardGateway(app, config)

    class Handler(ChaliceRequestHandler):
        def __init__(self, request, client_address, server, app_object=None, config=None):
            self.local_gateway = gateway
            ChaliceRequestHandler.__bases__[0].__init__(self, request, client_address, server)

        def log_message(self, format: str, *args: Any) -> None:
            """The app logs each request itself, as JSON."""

    return Handler
