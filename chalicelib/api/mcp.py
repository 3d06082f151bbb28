"""`POST /v1/mcp`, the hosted MCP server's route; the server itself is api/mcp_server.py."""

from __future__ import annotations

from chalicelib.api.http import RequestContext, Router

router = Router(__name__, "mcp")


@router.route("/v1/mcp", "POST", workspace=False)
def mcp_endpoint(ctx: RequestContext):
    """Model Context Protocol (streamable HTTP, stateless, JSON responses)."""
    # The MCP wire types (hundreds of pydantic models) take most of a second to import:
    # only a request to this route pays for them, not every cold start of the API.
    from chalicelib.api import mcp_server

    return mcp_server.handle(ctx)
