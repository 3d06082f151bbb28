"""The OpenAPI 3.1 document, generated from the route registry and the pydantic models."""

from __future__ import annotations

import re
import typing
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.api.http import ROUTES

REF = "#/components/schemas/{model}"

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
                "request_id": {"type": "string"},
            },
        }
    },
}
PAGINATION_SCHEMA = {
    "type": "object",
    "properties": {
        "next_cursor": {"type": ["string", "null"]},
        "has_more": {"type": "boolean"},
    },
}


def _response_model(response: Any) -> tuple[type[BaseModel] | None, bool]:
    if typing.get_origin(response) is list:
        return typing.get_args(response)[0], True
    return response, False


@cache
def document() -> dict[str, Any]:
    models: set[type[BaseModel]] = set()
    for spec in ROUTES:
        if spec.body is not None:
            models.add(spec.body)
        model, _ = _response_model(spec.response)
        if model is not None:
            models.add(model)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, schemas = models_json_schema([(m, "validation") for m in ordered], ref_template=REF)
    components = dict(schemas.get("$defs", {}))
    components["Error"] = ERROR_SCHEMA
    components["Pagination"] = PAGINATION_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for spec in ROUTES:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec)
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


def _operation(spec) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", spec.path)
    ]
    model, is_list = _response_model(spec.response)
    if is_list:
        parameters += [
            {
                "name": "limit",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": 100},
            },
            {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        ]
    parameters += [
        {"name": name, "in": "query", "description": text, "schema": {"type": "string"}}
        for name, text in spec.query.items()
    ]
    if spec.auth and spec.workspace:
        parameters.append(
            {
                "name": "X-Workspace-ID",
                "in": "header",
                "required": False,
                "description": "The workspace a partner key or user token acts in",
                "schema": {"type": "string"},
            }
        )
    if spec.auth and spec.method in ("POST", "PATCH", "DELETE"):
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Makes a retry safe: the first answer is replayed for 24 h",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    operation: dict[str, Any] = {
        "operationId": spec.function.__name__,
        "summary": spec.summary,
        "tags": spec.tags,
        "parameters": parameters,
        "responses": {
            str(spec.status): _success(spec.status, model, is_list),
            "default": {
                "description": "Error",
                "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
            },
        },
    }
    if spec.auth:
        operation["security"] = [{"bearerAuth": []}]
    if spec.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=spec.body.__name__)}}
            },
        }
    return operation


def _success(status: int, model: type[BaseModel] | None, is_list: bool) -> dict[str, Any]:
    if status == 204:
        return {"description": "No content"}
    if model is None:
        return {
            "description": "OK",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    ref = {"$ref": REF.format(model=model.__name__)}
    if is_list:
        schema = {
            "type": "object",
            "properties": {
                "data": {"type": "array", "items": ref},
                "pagination": {"$ref": REF.format(model="Pagination")},
            },
        }
    else:
        schema = {"type": "object", "properties": {"data": ref}}
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}
