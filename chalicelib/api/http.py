"""What every HTTP route shares: request ids, authentication and scopes, body and query
parsing, the data/list/error envelopes, and the route registry that openapi.py reads.

A route is declared with `Router.route(...)`; its function takes a `RequestContext` and
the path parameters and returns a model, a `Page`, `None` (204) or a chalice `Response`.
Domain errors (`errors.ApiError`) become the contract's error envelope here and only here.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from chalice import Blueprint, Response
from pydantic import BaseModel, ValidationError

from chalicelib.api import cursors, idempotency
from chalicelib.aws import errors as aws_errors
from chalicelib.core.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)
from chalicelib.core.log import logger
from chalicelib.core.pagination import Page
from chalicelib.core.settings import get_settings
from chalicelib.identity import ratelimit
from chalicelib.identity.auth import act_in, bearer_token, identify, workspace_named
from chalicelib.identity.principal import Principal
from chalicelib.store.errors import Missing, StoreError

_request_id: ContextVar[str] = ContextVar("request_id", default="req_unknown")
_extra_headers: ContextVar[dict[str, str] | None] = ContextVar("extra_headers", default=None)

JSON_HEADERS = {"Content-Type": "application/json"}


def request_id() -> str:
    return _request_id.get()


def add_response_headers(headers: dict[str, str]) -> None:
    """Headers for this request's response, whatever it turns out to be (rate limits)."""
    extra = _extra_headers.get()
    if extra is not None:
        extra.update(headers)


@dataclass(frozen=True)
class Param:
    """A query parameter or request header: its JSON schema, which openapi.py publishes
    and `RequestContext.param` reads by, so that what the document calls valid is what the
    route accepts. A value absent reads as the schema's default (or None)."""

    schema: dict[str, Any]
    description: str = ""
    required: bool = False


def choice(values: tuple[str, ...], description: str = "", required: bool = False) -> Param:
    return Param({"type": "string", "enum": list(values)}, description, required)


def integer(low: int, high: int, default: int | None, description: str = "") -> Param:
    schema: dict[str, Any] = {"type": "integer", "minimum": low, "maximum": high}
    if default is not None:
        schema["default"] = default
    return Param(schema, description)


def text(description: str = "", max_length: int | None = None) -> Param:
    schema: dict[str, Any] = {"type": "string"}
    if max_length is not None:
        schema["maxLength"] = max_length
    return Param(schema, description)


_INTEGER = re.compile(r"-?[0-9]{1,20}")


def _read(name: str, param: Param, raw: str | None) -> Any:
    schema = param.schema
    if raw is None:
        if param.required:
            raise BadRequest(f"Query parameter '{name}' is required")
        return schema.get("default")
    if schema["type"] == "integer":
        low, high = schema["minimum"], schema["maximum"]
        if not _INTEGER.fullmatch(raw) or not low <= int(raw) <= high:
            raise BadRequest(f"Query parameter '{name}' must be an integer from {low} to {high}")
        return int(raw)
    if "enum" in schema and raw not in schema["enum"]:
        raise BadRequest(f"Query parameter '{name}' must be one of: {', '.join(schema['enum'])}")
    if len(raw) > schema.get("maxLength", len(raw)):
        raise BadRequest(f"Query parameter '{name}' is longer than {schema['maxLength']}")
    return raw


@dataclass
class RouteSpec:
    method: str
    path: str
    function: Any
    scope: str | None
    body: type[BaseModel] | None
    response: Any
    status: int
    auth: bool
    summary: str
    tags: list[str]
    query: dict[str, Param]
    workspace: bool = True
    secret: bool = False
    headers: dict[str, Param] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    multipart: dict[str, Param] = field(default_factory=dict)
    content: dict[str, Any] | None = None
    credential: Any = None
    raw_body: tuple[Any, ...] = ()
    answers: dict[int, tuple[Any, ...]] = field(default_factory=dict)


ROUTES: list[RouteSpec] = []


@dataclass
class RequestContext:
    request: Any
    spec: RouteSpec
    principal: Principal | None = None
    body: Any = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def workspace_id(self) -> str:
        assert self.principal is not None and self.principal.workspace_id is not None
        return self.principal.workspace_id

    @property
    def headers(self) -> Any:
        return self.request.headers

    def query(self, name: str) -> str | None:
        params = self.request.query_params or {}
        return params.get(name)

    def param(self, name: str) -> Any:
        """A declared query parameter's value (of its schema's type), or 400."""
        return _read(name, self.spec.query[name], self.query(name))

    def page_params(self, list_name: str, scope: str) -> tuple[int, dict[str, Any] | None]:
        limit = _read("limit", PAGE_QUERY["limit"], self.query("limit"))
        raw = self.query("cursor")
        start = cursors.decode(raw, list_name, scope) if raw else None
        return limit, start


# The query parameters of every list (a route whose response is list[Model]).
PAGE_QUERY = {
    "limit": integer(1, 100, 20, "Items per page"),
    "cursor": text("Opaque: the next_cursor of the previous page"),
}


class Router:
    """Routes of one resource, on a chalice Blueprint registered by app.py."""

    def __init__(self, import_name: str, tag: str) -> None:
        self.blueprint = Blueprint(import_name)
        self.tag = tag

    def route(
        self,
        path: str,
        method: str,
        *,
        scope: str | None = None,
        body: type[BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        auth: bool = True,
        query: dict[str, Param | str] | None = None,
        binary: bool = False,
        workspace: bool = True,
        secret: bool = False,
        headers: dict[str, Param] | None = None,
        errors: tuple[int, ...] = (),
        multipart: dict[str, Param] | None = None,
        content: dict[str, Any] | None = None,
        credential: Any = None,
        raw_body: tuple[Any, ...] = (),
        answers: dict[int, tuple[Any, ...]] | None = None,
    ):
        """`workspace=False` for routes that do not act in one workspace: partner and
        user tokens need no X-Workspace-ID there. `secret=True` for routes whose answer
        holds a secret shown once (a new key): its idempotent replay is kept encrypted.
        What the OpenAPI document says of the route beyond what the registry implies:
        `query` and `headers` it reads (a bare string is a free-form text's description),
        `errors` its own domain errors can answer (statuses), `multipart` the fields of
        a multipart/form-data body, `content` its success answer's media types when not
        JSON. `credential(request, params)` is a second way in for clients that cannot send an
        Authorization header (the log stream's tickets): a Principal, or None to ask for
        the bearer token as usual.
        For a route that reads its JSON body itself (a protocol of its own, as JSON-RPC on
        the MCP route), `raw_body` documents that body, any of the models it names, which
        the registry neither parses nor checks; `answers` documents the JSON it answers per
        status, any of the models named (an empty tuple: no body): for the success status
        instead of the data envelope, for an error status beside the error envelope when
        the registry can answer that status too. A model may be named "module:Name", so
        that it is imported only when the document is built, not with the route."""

        def decorator(function):
            spec = RouteSpec(
                method=method,
                path=path,
                function=function,
                scope=scope,
                body=body,
                response=response,
                status=status,
                auth=auth,
                summary=(function.__doc__ or function.__name__).strip().splitlines()[0],
                tags=[self.tag],
                query={
                    name: text(value) if isinstance(value, str) else value
                    for name, value in (query or {}).items()
                },
                workspace=workspace,
                secret=secret,
                headers=headers or {},
                errors=errors,
                multipart=multipart or {},
                content=content,
                credential=credential,
                raw_body=raw_body,
                answers=answers or {},
            )
            ROUTES.append(spec)
            blueprint = self.blueprint

            def view(**params: str) -> Response:
                return _handle(spec, blueprint.current_request, params)

            view.__name__ = function.__name__
            blueprint.route(path, methods=[method], content_types=["*/*"])(view)
            return function

        return decorator


def _handle(
    spec: RouteSpec, request: Any, params: dict[str, str], counted: bool = True
) -> Response:
    """401 authentication, 429 rate limit, 403 scope, 400/413/422 body, then idempotency
    and the route: each check answers before the next one costs anything. `counted=False`
    for a route run within a request that the rate limit has already counted."""
    ctx = RequestContext(request=request, spec=spec)

    def route() -> Response:
        return _render(spec, spec.function(ctx, **params))

    def checked() -> Response:
        if spec.auth:
            alternative = spec.credential(request, params) if spec.credential else None
            ctx.principal = alternative or _authenticated(request.headers)
            if counted:
                add_response_headers(ratelimit.check(ctx.principal))
            if spec.workspace and ctx.principal.workspace_id is None:
                raise BadRequest(
                    "This route acts in one workspace: name it with the X-Workspace-ID header"
                )
            if spec.scope and not ctx.principal.grants(spec.scope):
                raise Forbidden(spec.scope)
        if spec.body is not None:
            ctx.body = parse_body(request, spec.body)
        key = idempotency.key_of(request.headers, spec.method) if ctx.principal else None
        if ctx.principal is None or key is None:
            return route()
        fingerprint = idempotency.fingerprint(
            spec.method, spec.path.format(**params), request.query_params, request.raw_body or b""
        )
        # The route answers through _answer itself, so that its errors are stored and
        # replayed like any other response.
        return idempotency.run(
            ctx.principal, key, fingerprint, lambda: _answer(spec, route), sealed=spec.secret
        )

    return _answer(spec, checked)


def route_spec(method: str, path: str) -> RouteSpec:
    """The declared route of a method and path template (as declared)."""
    for spec in ROUTES:
        if spec.method == method and spec.path == path:
            return spec
    raise LookupError(f"no route {method} {path}")


def invoke(spec: RouteSpec, request: Any, params: dict[str, str]) -> Response:
    """Run a declared route on a request built in-process (the MCP server's tool calls):
    the same authentication, scopes, validation and error envelope as over HTTP.
    `request` needs `headers` (case-insensitive), `query_params` and `raw_body`. It is
    not counted against the rate limit again: the HTTP request that carries it (one
    JSON-RPC message, batches being refused) already was."""
    return _handle(spec, request, params, counted=False)


def _authenticated(headers: Any) -> Principal:
    """The caller, acting in the workspace X-Workspace-ID names if it names one:
    Unauthorized for a bad credential, NotFound for a workspace it cannot act in. That
    refusal still takes a token from the caller's own bucket (and carries its headers), so
    probing workspace ids is rate-limited like any request."""
    principal = identify(bearer_token(headers))
    named = workspace_named(headers)
    if named is None:
        return principal
    try:
        return act_in(principal, named)
    except NotFound:
        add_response_headers(ratelimit.check(principal))
        raise


def _answer(spec: RouteSpec, produce: Any) -> Response:
    try:
        return produce()
    except ApiError as error:
        return error_response(error)
    except StoreError as error:
        return error_response(from_store(error))
    except Exception as error:
        return error_response(_unexpected(error, f"{spec.method} {spec.path}"))


# How long a client is asked to wait when AWS did not answer: botocore has already retried.
AWS_RETRY_AFTER_S = 5


def _unexpected(error: Exception, where: str) -> ApiError:
    """503 service_unavailable with Retry-After when AWS failed or did not answer in time
    (the request may be sent again, with the same Idempotency-Key); 500 for anything else."""
    if aws_errors.unavailable(error):
        logger().warning("AWS unavailable", extra={"route": where, "error": repr(error)[:300]})
        return ServiceUnavailable(
            "A dependency of the service did not answer; retry later", AWS_RETRY_AFTER_S
        )
    logger().exception("Unhandled error", extra={"route": where})
    return ApiError()


def parse_body(request: Any, model: type[BaseModel]) -> BaseModel:
    raw = request.raw_body or b""
    if len(raw) > get_settings().max_body_bytes:
        raise PayloadTooLarge(
            f"The request body is larger than {get_settings().max_body_bytes} bytes"
        )
    data = load_json(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object")
    try:
        # Strict, in JSON mode: a JSON type other than the schema's ("true" for a
        # boolean, "5" for an integer) is refused as the published schema says, while an
        # RFC 3339 string is still a datetime.
        return model.model_validate_json(raw if raw.strip() else b"{}", strict=True)
    except ValidationError as error:
        raise validation_error(error) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def load_json(raw: bytes | str) -> Any:
    """Strict JSON: no NaN or Infinity (Python's parser takes them, nothing can store them),
    and a body nested past the parser's recursion limit is refused, not a crash."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        raise BadRequest("The request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"The request body is not valid JSON: {error}") from None


def validation_error(error: ValidationError) -> ValidationFailed:
    fields: dict[str, list[str]] = {}
    for problem in error.errors():
        name = ".".join(str(part) for part in problem["loc"]) or "body"
        message = "Unknown field" if problem["type"] == "extra_forbidden" else problem["msg"]
        fields.setdefault(name, []).append(message)
    return ValidationFailed(fields)


def page_envelope(page: Page) -> dict[str, Any]:
    next_cursor = (
        cursors.encode(page.list_name, page.scope, page.next_key) if page.next_key else None
    )
    return {
        "data": [_dump(item) for item in page.items],
        "pagination": {"next_cursor": next_cursor, "has_more": page.next_key is not None},
    }


def _dump(item: Any) -> Any:
    if isinstance(item, BaseModel):
        return item.model_dump(mode="json", by_alias=True)
    return item


def _render(spec: RouteSpec, result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(body="", status_code=204, headers={})
    body = page_envelope(result) if isinstance(result, Page) else {"data": _dump(result)}
    return json_response(body, spec.status)


def json_response(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers={**JSON_HEADERS, **(headers or {})},
    )


def from_store(error: StoreError) -> ApiError:
    """The contract's error for what a repository found: a missing item is 404, a lost
    uniqueness claim or a concurrent change 409."""
    if isinstance(error, Missing):
        return NotFound(error.what)
    return Conflict(error.message)


def error_body(error: ApiError) -> dict[str, Any]:
    payload: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details is not None:
        payload["details"] = error.details
    payload["request_id"] = request_id()
    return {"error": payload}


def error_response(error: ApiError) -> Response:
    return json_response(error_body(error), error.status, error.headers)


# Chalice answers some requests itself, before any view runs; their bodies are
# {"Code": ..., "Message": ...}. These become the contract's envelope.
_CHALICE_ERRORS = {
    "MethodNotAllowedError": ("method_not_allowed", "Method not allowed on this path"),
    "UnsupportedMediaType": ("unsupported_media_type", "Unsupported media type"),
    "BadRequestError": ("bad_request", "Malformed request"),
    "NotFoundError": ("not_found", "Not found"),
    "UnauthorizedError": ("unauthorized", Unauthorized.default_message),
    "ForbiddenError": ("forbidden", "Forbidden"),
    "InternalServerError": ("internal_error", ApiError.default_message),
}


def _normalise(response: Response) -> Response:
    body = response.body
    if isinstance(body, dict) and "Code" in body:
        code, message = _CHALICE_ERRORS.get(body["Code"], ("internal_error", "Internal error"))
        error = ApiError(message)
        error.code = code
        error.status = response.status_code
        keep = {k: v for k, v in response.headers.items() if k.lower() == "allow"}
        return json_response(error_body(error), response.status_code, keep)
    return response


def middleware(event: Any, get_response: Any) -> Response:
    """Outermost layer of every HTTP request: id, envelope of last resort, access log."""
    rid = "req_" + secrets.token_hex(12)
    _request_id.set(rid)
    _extra_headers.set({})
    # Every log line of the request, errors included, carries its id (per thread: the
    # local server answers requests in threads).
    logger().thread_safe_append_keys(request_id=rid)
    started = time.perf_counter()
    try:
        response = _normalise(get_response(event))
    except Exception as error:
        response = error_response(_unexpected(error, "outside a route"))
    response.headers.update(_extra_headers.get() or {})
    response.headers["X-Request-ID"] = rid
    logger().info(
        "request",
        extra={
            "method": getattr(event, "method", None),
            "path": getattr(event, "path", None),
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return response
