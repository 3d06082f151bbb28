"""The hosted MCP server behind `POST /v1/mcp` (api/mcp.py): Model Context Protocol over the
streamable HTTP transport, stateless, answering each message with one JSON response.

Its tools are REST routes: a tool call is turned into the route's request (path ids, query
fields, JSON body) and run through the route registry (`http.invoke`), so it is authenticated,
scoped and validated exactly as the REST call is, and answers the same data; the rate limit
counts the MCP request once, its tool call included.
A REST error becomes a tool error (`isError`) carrying the contract's error envelope.

The protocol messages are the official SDK's pydantic types (`mcp_types`, the SDK's wire
types without its transport stack). The SDK's own server classes run only as ASGI apps over
anyio streams, and Chalice on Lambda is neither ASGI nor a long-lived process, so this module
dispatches the four methods a stateless tool server needs (initialize, ping, tools/list,
tools/call) itself, on those types.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import mcp_types as mcp
from chalice import Response
from chalice.app import CaseInsensitiveMapping
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from chalicelib.api.http import (
    RequestContext,
    error_body,
    invoke,
    json_response,
    load_json,
    route_spec,
    validation_error,
)
from chalicelib.archive.artifacts import pack_files
from chalicelib.archive.rules import InvalidArchive
from chalicelib.core.errors import ApiError, BadRequest, PayloadTooLarge, ValidationFailed
from chalicelib.core.models import PROJECT_STATUSES, EnvUpdate, Input, ProjectCreate
from chalicelib.core.settings import get_settings
from chalicelib.deployments.models import Note, RedeployRequest, RollbackRequest
from chalicelib.deployments.status import STATUSES

PROJECT = "/v1/projects/{project_id}"
DEPLOYMENT = PROJECT + "/deployments/{deployment_id}"
SERVER = mcp.Implementation(name="shipyard", title="Shipyard", version="1")
INSTRUCTIONS = (
    "Shipyard deploys apps. Typical flow: list_projects or create_project, deploy_files with "
    "the app's files, wait_for_deployment until it is running or failed, get_logs to see why, "
    "get_runtime_logs for what the running app prints; rollback to an earlier deployment_id "
    "if the new one misbehaves."
)

# The body of POST /v1/mcp: any one JSON-RPC message, as api/mcp.py documents it.
MESSAGE: TypeAdapter[mcp.JSONRPCMessage] = TypeAdapter(mcp.JSONRPCMessage)

Id = Annotated[str, Field(min_length=1, max_length=64)]


class ProjectRef(Input):
    project_id: Id = Field(description="The project's id (prj_...)")


class DeploymentRef(ProjectRef):
    deployment_id: Id = Field(description="The deployment's id (dep_...)")


class Page(Input):
    limit: Annotated[int, Field(ge=1, le=100)] = Field(20, description="Items per page")
    cursor: str | None = Field(None, description="pagination.next_cursor of the previous page")


class ListProjects(Page):
    status: Literal[PROJECT_STATUSES] | None = None
    search: Annotated[str, Field(max_length=255)] | None = Field(
        None, description="Part of the name or slug"
    )


class ListDeployments(Page, ProjectRef):
    status: Literal[STATUSES] | None = None


class WaitForDeployment(DeploymentRef):
    timeout_s: Annotated[int, Field(ge=1, le=25)] = Field(
        25, description="Answer after this many seconds at most, even if still in progress"
    )


class GetLogs(DeploymentRef):
    after: Annotated[int, Field(ge=0)] = Field(
        0, description="Only lines after this seq (pagination.next_cursor of the last call)"
    )
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class DeployFiles(ProjectRef):
    files: dict[str, str] = Field(
        min_length=1,
        description="The app's files: relative path (e.g. 'index.html', 'src/app.py') -> "
        "text content. Packed as a .tar.gz and built like an uploaded archive.",
    )
    note: Note | None = None


class Rollback(RollbackRequest, ProjectRef):
    pass


class Redeploy(RedeployRequest, ProjectRef):
    pass


class SetEnv(EnvUpdate, ProjectRef):
    pass


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    method: str
    path: str
    arguments: type[BaseModel]
    query: tuple[str, ...] = ()
    read_only: bool = False
    body: Any = field(default=None)

    def definition(self) -> mcp.Tool:
        return mcp.Tool(
            name=self.name,
            description=self.description,
            input_schema=self.arguments.model_json_schema(),
            annotations=mcp.ToolAnnotations(read_only_hint=self.read_only),
        )


def _deploy_files_body(arguments: DeployFiles) -> tuple[str, bytes]:
    """The multipart form POST .../deploy takes, with the files packed as its archive."""
    try:
        archive = pack_files({path: text.encode() for path, text in arguments.files.items()})
    except InvalidArchive as error:
        raise ValidationFailed({"files": [error.message]}, f"Refused: {error.message}") from None
    limit = get_settings().deploy_max_bytes
    if len(archive) > limit:
        raise PayloadTooLarge(
            f"The packed files are {len(archive)} bytes, over the {limit} bytes deploy_files "
            "takes: upload larger apps through POST .../uploads",
            {"max_bytes": limit},
        )
    boundary = secrets.token_hex(16)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="archive"; '
        'filename="files.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n'.encode(),
        archive,
        b"\r\n",
    ]
    if arguments.note:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n'
            f"{arguments.note}\r\n".encode()
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


TOOLS = {
    tool.name: tool
    for tool in (
        Tool(
            "list_projects",
            "List the workspace's projects (id, name, url, status), newest first.",
            "GET",
            "/v1/projects",
            ListProjects,
            query=("limit", "cursor", "status", "search"),
            read_only=True,
        ),
        Tool(
            "create_project",
            "Create a project. Only name is required; runtime 'auto' detects static, node "
            "or python apps from their files.",
            "POST",
            "/v1/projects",
            ProjectCreate,
        ),
        Tool(
            "deploy_files",
            "Deploy an app from its files (path -> content). Returns the new deployment, "
            "status pending; follow it with wait_for_deployment and get_logs.",
            "POST",
            PROJECT + "/deploy",
            DeployFiles,
            body=_deploy_files_body,
        ),
        Tool(
            "get_deployment",
            "Get one deployment: status, url, error_code and error_message.",
            "GET",
            DEPLOYMENT,
            DeploymentRef,
            read_only=True,
        ),
        Tool(
            "wait_for_deployment",
            "Wait until a deployment is running or has ended (failed, canceled, stopped), "
            "or timeout_s passes; returns the deployment. Call again while it is in progress.",
            "GET",
            DEPLOYMENT + "/wait",
            WaitForDeployment,
            query=("timeout_s",),
            read_only=True,
        ),
        Tool(
            "get_logs",
            "A deployment's build and deploy log lines after a seq, with the deployment's "
            "status. Continue from pagination.next_cursor; while pagination.has_more is "
            "true there is more to read now (with no lines yet, call again shortly).",
            "GET",
            DEPLOYMENT + "/logs",
            GetLogs,
            query=("after", "limit"),
            read_only=True,
        ),
        Tool(
            "get_runtime_logs",
            "What a deployment's app printed while it runs (phase 'app') and the supervisor's "
            "lines (phase 'runtime'), after a seq, with the deployment's status. Continue from "
            "pagination.next_cursor; use get_logs for the build.",
            "GET",
            DEPLOYMENT + "/runtime-logs",
            GetLogs,
            query=("after", "limit"),
            read_only=True,
        ),
        Tool(
            "list_deployments",
            "List a project's deployments, newest first (number, status, source, url).",
            "GET",
            PROJECT + "/deployments",
            ListDeployments,
            query=("limit", "cursor", "status"),
            read_only=True,
        ),
        Tool(
            "rollback",
            "Run an earlier production deployment's artifact and env again, without "
            "rebuilding (not a preview's: deploy its commit instead).",
            "POST",
            PROJECT + "/rollback",
            Rollback,
        ),
        Tool(
            "redeploy",
            "Deploy the current artifact again with the project's current env vars.",
            "POST",
            PROJECT + "/redeploy",
            Redeploy,
        ),
        Tool(
            "cancel_deployment",
            "Cancel a deployment that is pending, building, built or deploying.",
            "POST",
            DEPLOYMENT + "/cancel",
            DeploymentRef,
        ),
        Tool(
            "set_env",
            "Set (upsert) environment variables: {'KEY': {'value': '...', 'secret': true}}. "
            "They reach the app at its next deployment or redeploy.",
            "PUT",
            PROJECT + "/env",
            SetEnv,
        ),
    )
}


class InvalidParams(Exception):
    """A request whose params name something this server does not have (a tool)."""


@dataclass
class ToolRequest:
    """What a route reads of a request, built for a tool call."""

    headers: CaseInsensitiveMapping
    query_params: dict[str, str] | None
    raw_body: bytes


def handle(ctx: RequestContext) -> Response:
    """One JSON-RPC message in, its JSON response (or 202) out. The message is read on the
    SDK's own union of the four message types, strictly, as the OpenAPI document describes
    the body (api/mcp.py): anything else is a 400 with a JSON-RPC error whose id is null."""
    raw = ctx.request.raw_body or b""
    limit = get_settings().max_body_bytes + get_settings().deploy_max_bytes * 2
    if len(raw) > limit:
        raise PayloadTooLarge(f"The message is larger than {limit} bytes")
    try:
        data = load_json(raw)
    except BadRequest as error:
        return _error(None, mcp.PARSE_ERROR, error.message)
    if isinstance(data, list):
        return _error(
            None, mcp.INVALID_REQUEST, "JSON-RPC batches are not supported: send one message"
        )
    try:
        message = MESSAGE.validate_python(_integral_numbers(data), strict=True)
    except ValidationError:
        return _error(None, mcp.INVALID_REQUEST, "Not a JSON-RPC 2.0 message")
    if not isinstance(message, mcp.JSONRPCRequest):
        # A notification, or a client's response: nothing to answer.
        return Response(body="", status_code=202, headers={})
    handler = _METHODS.get(message.method)
    if handler is None:
        return _error(message.id, mcp.METHOD_NOT_FOUND, f"Unknown method '{message.method}'")
    try:
        result = handler(ctx, message.params or {})
    except ValidationError as error:
        details = error.errors(include_url=False, include_context=False, include_input=False)
        return _error(message.id, mcp.INVALID_PARAMS, "Invalid params", details)
    except InvalidParams as error:
        return _error(message.id, mcp.INVALID_PARAMS, str(error))
    reply = mcp.JSONRPCResponse(jsonrpc="2.0", id=message.id, result=_dump(result))
    return json_response(reply.model_dump(mode="json", by_alias=True), 200)


def _integral_numbers(data: Any) -> Any:
    """JSON has one number type, and to JSON Schema 1.0 is the integer 1: the messages'
    integer fields (an id, an error's code) take an integral float as that integer, while
    strict validation refuses every other value of a type the schema refuses (a string or
    a boolean where an integer belongs)."""
    if not isinstance(data, dict):
        return data
    data = {**data, "id": _integral(data["id"])} if "id" in data else data
    error = data.get("error")
    if isinstance(error, dict) and "code" in error:
        data["error"] = {**error, "code": _integral(error["code"])}
    return data


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _dump(result: BaseModel) -> dict[str, Any]:
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


def _error(request_id: Any, code: int, message: str, data: Any = None) -> Response:
    error = mcp.JSONRPCError(
        jsonrpc="2.0", id=request_id, error=mcp.ErrorData(code=code, message=message, data=data)
    )
    # A request that was understood gets its JSON-RPC error with 200, as the transport asks;
    # a body that is not one JSON-RPC message (no id to answer) is a 400.
    return json_response(
        error.model_dump(mode="json", by_alias=True), 400 if request_id is None else 200
    )


def _initialize(ctx: RequestContext, params: dict[str, Any]) -> mcp.InitializeResult:
    asked = mcp.InitializeRequestParams.model_validate(params).protocol_version
    version = asked if asked in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
    return mcp.InitializeResult(
        protocol_version=version,
        capabilities=mcp.ServerCapabilities(tools=mcp.ToolsCapability(list_changed=False)),
        server_info=SERVER,
        instructions=INSTRUCTIONS,
    )


def _ping(ctx: RequestContext, params: dict[str, Any]) -> mcp.EmptyResult:
    return mcp.EmptyResult()


def _list_tools(ctx: RequestContext, params: dict[str, Any]) -> mcp.ListToolsResult:
    return mcp.ListToolsResult(tools=[tool.definition() for tool in TOOLS.values()])


def _call_tool(ctx: RequestContext, params: dict[str, Any]) -> mcp.CallToolResult:
    call = mcp.CallToolRequestParams.model_validate(params)
    tool = TOOLS.get(call.name)
    if tool is None:
        raise InvalidParams(f"Unknown tool '{call.name}'; the tools are: {', '.join(TOOLS)}")
    try:
        status, body = _run(ctx, tool, call.arguments or {})
    except ApiError as error:
        status, body = error.status, error_body(error)
    text = mcp.TextContent(type="text", text=json.dumps(body, separators=(",", ":")))
    if status >= 400:
        return mcp.CallToolResult(content=[text], structured_content=body, is_error=True)
    # A list's data is an array, and structuredContent must be an object: a list answers
    # its whole page (data and pagination), a single resource its data.
    data = body.get("data") if set(body) == {"data"} else body
    text.text = json.dumps(data, separators=(",", ":"))
    return mcp.CallToolResult(content=[text], structured_content=data)


def _run(ctx: RequestContext, tool: Tool, raw: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The tool's REST call: validate the arguments on its model, split them into path ids,
    query and body, and run the route as a request of the same caller."""
    try:
        arguments = tool.arguments.model_validate(raw)
    except ValidationError as error:
        raise validation_error(error) from None
    values = arguments.model_dump(mode="json", by_alias=True, exclude_unset=True)
    spec = route_spec(tool.method, tool.path)
    path_ids = {name: values.pop(name) for name in list(values) if "{" + name + "}" in tool.path}
    query = {name: str(values.pop(name)) for name in tool.query if name in values}
    headers = {
        name: value
        for name, value in ctx.request.headers.items()
        if name.lower() not in ("idempotency-key", "content-length", "content-type")
    }
    raw_body = b""
    if tool.body is not None:
        headers["content-type"], raw_body = tool.body(arguments)
    elif tool.method != "GET":
        headers["content-type"] = "application/json"
        raw_body = json.dumps(values).encode()
    request = ToolRequest(CaseInsensitiveMapping(headers), query or None, raw_body)
    response = invoke(spec, request, path_ids)
    return response.status_code, json.loads(response.body) if response.body else {}


_METHODS = {
    "initialize": _initialize,
    "ping": _ping,
    "tools/list": _list_tools,
    "tools/call": _call_tool,
}
