"""`POST /v1/mcp`, the hosted MCP server's route; the server itself is api/mcp_server.py."""

from __future__ import annotations

from chalicelib.api.http import RequestContext, Router

router = Router(__name__, "mcp")

# The JSON-RPC messages, as the official SDK's wire types, named so that only the document
# imports them (see below). The body is any one of them: mcp_server.handle reads it on the
# same union (the SDK's JSONRPCMessage), so what the document calls valid is what it takes.
REQUEST = "mcp_types:JSONRPCRequest"
NOTIFICATION = "mcp_types:JSONRPCNotification"
RESULT = "mcp_types:JSONRPCResponse"
ERROR = "mcp_types:JSONRPCError"


@router.route(
    "/v1/mcp",
    "POST",
    workspace=False,
    errors=(413,),
    raw_body=(REQUEST, NOTIFICATION, RESULT, ERROR),
    # 200: a request's result or its JSON-RPC error; 202, no body: a notification or a
    # client's response; 400: a body that is not one JSON-RPC message (a JSON-RPC error
    # with id null), beside the registry's own 400s (Idempotency-Key) in the envelope.
    answers={200: (RESULT, ERROR), 202: (), 400: (ERROR,)},
)
def mcp_endpoint(ctx: RequestContext):
    """Model Context Protocol (streamable HTTP, stateless, JSON responses)."""
    # The MCP wire types (hundreds of pydantic models) take most of a second to import:
    # only a request to this route (or the OpenAPI document) pays for them, not every cold
    # start of the API.
    from chalicelib.api import mcp_server

    return mcp_server.handle(ctx)
