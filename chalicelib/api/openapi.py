"""The OpenAPI 3.1 document, generated from the route registry (api/http.py) and the
pydantic models: every operation with each status it can answer, the parameters and
headers it reads with their real schemas, its body (JSON or multipart), and links from
the operations that create a resource to the operations on it.

What a route can answer follows from how it is declared: authentication (401, 429),
a scope (403), a workspace (400 without X-Workspace-ID, 404 for one it cannot act in),
path ids (404), a body (400, 413, 422), parameters (400), a list (400 invalid_cursor),
Idempotency-Key (400, 409, 422); its own domain errors are listed with `errors=`. A route
that reads its body itself documents that body and its answers per status (`raw_body=`,
`answers=`), with models named lazily where importing them would slow the API's cold start.
"""

from __future__ import annotations

import pkgutil
import re
import typing
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.api.http import PAGE_QUERY, ROUTES, Param, RouteSpec
from chalicelib.api.idempotency import KEY_PATTERN
from chalicelib.identity.ratelimit import HEADER_NAMES

REF = "#/components/schemas/{model}"
# The id prefix of each path parameter (contract section 1): the document gives their
# form, so that a fuzzer's ids look like real ones.
ID_PREFIXES = {
    "workspace_id": "ws",
    "key_id": "key",
    "project_id": "prj",
    "upload_id": "upl",
    "deployment_id": "dep",
    "release_id": "rel",
    "webhook_id": "wh",
    "delivery_id": "whd",
    "event_id": "evt",
    "hook_id": "hook",
}
ID_BODY = "[0-9a-hjkmnp-tv-z]{26}"  # core/ids.py: a ULID in lowercase Crockford base32

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
                "request_id": {"type": "string", "pattern": "^req_"},
            },
        }
    },
}
PAGINATION_SCHEMA = {
    "type": "object",
    "required": ["next_cursor", "has_more"],
    "properties": {
        "next_cursor": {"type": ["string", "null"]},
        "has_more": {"type": "boolean"},
    },
}
REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    302: "Found: the answer is at the Location (a presigned URL)",
    400: "Malformed request, parameter or header (bad_request, invalid_cursor)",
    401: "Missing or invalid credentials (unauthorized)",
    403: "Scope missing or a count limit reached (forbidden, feature_limit_reached)",
    404: "Not found, or another workspace's (not_found)",
    409: "Conflict with the current state (conflict, invalid_state, idempotency_key_in_use)",
    413: "Body too large (payload_too_large)",
    422: "Body invalid (validation_failed, idempotency_key_reused)",
    429: "Rate limit or quota (rate_limited, quota_exceeded)",
    503: "Temporarily unavailable (build_queue_full, a dependency down)",
}
REQUEST_ID = {
    "X-Request-ID": {
        "description": "This request's id, also in an error's request_id",
        "required": True,
        "schema": {"type": "string", "pattern": "^req_"},
    }
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
RATE_LIMIT = {
    name: {"description": "Rate limit state (contract section 3)", "schema": {"type": "string"}}
    for name in HEADER_NAMES
}


def _response_model(response: Any) -> tuple[type[BaseModel] | None, bool]:
    if typing.get_origin(response) is list:
        return typing.get_args(response)[0], True
    return response, False


def _resolved(model: type[BaseModel] | str) -> type[BaseModel]:
    """A model, or one named "module:Name" (imported now, when the document is built)."""
    return pkgutil.resolve_name(model) if isinstance(model, str) else model


def _models(spec: RouteSpec) -> list[tuple[type[BaseModel], str]]:
    found = []
    if spec.body is not None:
        found.append((spec.body, "validation"))
    found += [(_resolved(model), "validation") for model in spec.raw_body]
    for models in spec.answers.values():
        found += [(_resolved(model), "serialization") for model in models]
    model, _ = _response_model(spec.response)
    if model is not None:
        found.append((model, "serialization"))
    for media in (spec.content or {}).values():
        if isinstance(media, type) and issubclass(media, BaseModel):
            found.append((media, "serialization"))
    return found


@cache
def document() -> dict[str, Any]:
    wanted = {pair for spec in ROUTES for pair in _models(spec)}
    ordered = sorted(wanted, key=lambda pair: (pair[0].__name__, pair[1]))
    refs, schemas = models_json_schema(ordered, ref_template=REF)
    components = dict(schemas.get("$defs", {}))
    components["Error"] = ERROR_SCHEMA
    components["Pagination"] = PAGINATION_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for spec in ROUTES:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec, refs)
    _link_creations(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Shipyard API",
            "version": "1.0.0",
            "description": "Deploy apps from source: upload, build, deploy, health check, logs.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def _ref(refs: dict, model: type[BaseModel], mode: str) -> dict[str, Any]:
    return dict(refs[(model, mode)])


def _any_of(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}


def _documented(refs: dict, models: tuple[Any, ...], mode: str) -> list[dict[str, Any]]:
    return [_ref(refs, _resolved(model), mode) for model in models]


def _parameter(name: str, where: str, param: Param) -> dict[str, Any]:
    parameter = {"name": name, "in": where, "required": param.required, "schema": param.schema}
    if param.description:
        parameter["description"] = param.description
    return parameter


def path_names(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def _path_schema(name: str) -> dict[str, Any]:
    if name in ID_PREFIXES:
        return {"type": "string", "pattern": f"^{ID_PREFIXES[name]}_{ID_BODY}$"}
    if name == "key":  # an environment variable's name
        return {"type": "string", "pattern": r"^[A-Z_][A-Z0-9_]{0,254}$"}
    return {"type": "string", "minLength": 1}


def _statuses(spec: RouteSpec, is_list: bool) -> set[int]:
    statuses = set(spec.errors)
    if spec.auth:
        statuses |= {401, 429}
        if spec.scope:
            statuses.add(403)
        if spec.workspace:
            statuses |= {400, 404}
        if spec.method in ("POST", "PATCH", "DELETE"):
            statuses |= {400, 409, 422}  # Idempotency-Key: malformed, in use, reused
    if path_names(spec.path):
        statuses.add(404)
    if spec.body is not None:
        statuses |= {400, 413, 422}
    if spec.query or spec.headers or is_list:
        statuses.add(400)
    return statuses


def _operation(spec: RouteSpec, refs: dict) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(name)}
        for name in path_names(spec.path)
    ]
    model, is_list = _response_model(spec.response)
    query = {**(PAGE_QUERY if is_list else {}), **spec.query}
    parameters += [_parameter(name, "query", param) for name, param in query.items()]
    parameters += [_parameter(name, "header", param) for name, param in spec.headers.items()]
    if spec.auth and spec.workspace:
        parameters.append(
            {
                "name": "X-Workspace-ID",
                "in": "header",
                "required": False,
                "description": "The workspace a partner key or user token acts in",
                "schema": {"type": "string", "pattern": f"^ws_{ID_BODY}$"},
            }
        )
    if spec.auth and spec.method in ("POST", "PATCH", "DELETE"):
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Makes a retry safe: the first answer is replayed for 24 h",
                "schema": {"type": "string", "pattern": KEY_PATTERN},
            }
        )
    responses = {str(spec.status): _success(spec, refs, model, is_list)}
    statuses = _statuses(spec, is_list)
    for status in sorted((statuses | set(spec.answers)) - {spec.status}):
        if status < 400:
            responses[str(status)] = _answered(spec, refs, status)
            continue
        headers = {**REQUEST_ID, **(RETRY_AFTER if status in (429, 503) else {})}
        schemas = _documented(refs, spec.answers.get(status, ()), "serialization")
        if status in statuses:
            schemas.append({"$ref": REF.format(model="Error")})
        responses[str(status)] = {
            "description": REASONS[status],
            "headers": headers,
            "content": {"application/json": {"schema": _any_of(schemas)}},
        }
    operation: dict[str, Any] = {
        "operationId": spec.function.__name__,
        "summary": spec.summary,
        "tags": spec.tags,
        "parameters": parameters,
        "responses": responses,
    }
    if spec.auth:
        operation["security"] = [{"bearerAuth": []}]
    if spec.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(refs, spec.body, "validation")}},
        }
    if spec.raw_body:
        schemas = _documented(refs, spec.raw_body, "validation")
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _any_of(schemas)}},
        }
    if spec.multipart:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [n for n, field in spec.multipart.items() if field.required],
                        "properties": {n: field.schema for n, field in spec.multipart.items()},
                        "additionalProperties": False,
                    }
                }
            },
        }
    return operation


def _success(spec: RouteSpec, refs: dict, model: Any, is_list: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": REASONS.get(spec.status, "OK"), "headers": REQUEST_ID}
    if spec.auth:
        answer["headers"] = {**REQUEST_ID, **RATE_LIMIT}
    if spec.status == 204:
        return answer
    if spec.status in spec.answers:
        return _answered(spec, refs, spec.status)
    if spec.content is not None:
        answer["content"] = {
            media: {"schema": _ref(refs, schema, "serialization")}
            if isinstance(schema, type)
            else schema
            for media, schema in spec.content.items()
        }
        return answer
    if model is None:
        schema: dict[str, Any] = {"type": "object"}
    elif is_list:
        schema = {
            "type": "object",
            "required": ["data", "pagination"],
            "properties": {
                "data": {"type": "array", "items": _ref(refs, model, "serialization")},
                "pagination": {"$ref": REF.format(model="Pagination")},
            },
        }
    else:
        schema = {
            "type": "object",
            "required": ["data"],
            "properties": {"data": _ref(refs, model, "serialization")},
        }
    answer["content"] = {"application/json": {"schema": schema}}
    return answer


def _answered(spec: RouteSpec, refs: dict, status: int) -> dict[str, Any]:
    """A status below 400 as the registry answers it, with the JSON the route documents
    for it in `answers` (none when it names no model)."""
    headers = {**REQUEST_ID, **RATE_LIMIT} if spec.auth else REQUEST_ID
    answer: dict[str, Any] = {"description": REASONS.get(status, "OK"), "headers": headers}
    schemas = _documented(refs, spec.answers.get(status, ()), "serialization")
    if schemas:
        answer["content"] = {"application/json": {"schema": _any_of(schemas)}}
    return answer


def _link_creations(paths: dict[str, dict[str, Any]]) -> None:
    """Links from each operation that answers a resource with an id (creating it, or a
    new deployment from a redeploy) to every operation on that resource: the item path
    is the GET path that answers the same model, and its ids come from the request's own
    path or from the answer (`project_id` of a deployment)."""
    items = {}
    for spec in ROUTES:
        model, is_list = _response_model(spec.response)
        if spec.method == "GET" and model is not None and not is_list and path_names(spec.path):
            items.setdefault(model, spec.path)
    for spec in ROUTES:
        model, is_list = _response_model(spec.response)
        if spec.method != "POST" or is_list or model not in items:
            continue
        item = items[model]
        own = path_names(spec.path)
        *outer, last = path_names(item)
        if spec.path == item or last in own:
            continue
        links = {}
        for target in ROUTES:
            if not (target.path == item or target.path.startswith(item + "/")):
                continue
            parameters = {}
            for name in path_names(target.path):
                if name == last:
                    parameters[name] = "$response.body#/data/id"
                elif name in own:
                    parameters[name] = f"$request.path.{name}"
                elif name in outer and name in model.model_fields:
                    parameters[name] = f"$response.body#/data/{name}"
            if len(parameters) == len(path_names(target.path)):
                links[target.function.__name__] = {
                    "operationId": target.function.__name__,
                    "parameters": parameters,
                }
        if links:
            response = paths[spec.path][spec.method.lower()]["responses"][str(spec.status)]
            response["links"] = links
