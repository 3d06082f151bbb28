"""boto3 clients, created lazily and cached per process.

boto3 is imported here and nowhere on the import path of `app`, so a cold start pays for
it only when a request first needs AWS. The endpoint comes from boto3's own
`AWS_ENDPOINT_URL` variable, which the local stack points at moto. Every call has bounded
connect and read timeouts and a bounded number of attempts (core/settings.py), so an AWS
that stalls fails a request within seconds instead of hanging it.

DynamoDB's and DynamoDB Streams' clients parse attribute values without walking each one
through botocore's shape (a third of the CPU a list request took): they come back as the
JSON DynamoDB sent, with binary values decoded to bytes, which is exactly botocore's own
result, so what is read can also be sent back (a LastEvaluatedKey, UnprocessedKeys).
`store/dynamo.deserialize` reads them.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

from chalicelib.core.settings import get_settings

_clients: dict[str, Any] = {}
_lock = threading.Lock()
_RAW_ATTRIBUTES = ("dynamodb", "dynamodbstreams")


def client(service: str) -> Any:
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        if service not in _clients:
            import boto3
            import botocore.session
            from botocore.config import Config

            settings = get_settings()
            config = Config(
                retries={"total_max_attempts": settings.aws_max_attempts, "mode": "standard"},
                connect_timeout=settings.aws_connect_timeout_s,
                read_timeout=settings.aws_read_timeout_s,
                max_pool_connections=50,
            )
            core = botocore.session.get_session()
            if service in _RAW_ATTRIBUTES:
                core.register_component("response_parser_factory", _raw_attribute_parsers())
            session = boto3.session.Session(botocore_session=core)
            _clients[service] = session.client(service, region_name=settings.region, config=config)
        return _clients[service]


def _raw_attribute_parsers() -> Any:
    """botocore's response parsers, but taking each AttributeValue, and each map of them
    (an item, a key), as the JSON it came in, binary decoded."""
    from botocore.parsers import JSONParser, ResponseParserFactory

    class RawAttributes(JSONParser):
        def _handle_structure(self, shape, value):
            if shape.name == "AttributeValue":
                return _binary_decoded(value)
            return super()._handle_structure(shape, value)

        def _handle_map(self, shape, value):
            if shape.value.name == "AttributeValue":
                for name, attribute in value.items():
                    value[name] = _binary_decoded(attribute)
                return value
            return super()._handle_map(shape, value)

    class Factory(ResponseParserFactory):
        def create_parser(self, protocol_name):
            if protocol_name == "json":
                return RawAttributes(**self._defaults)
            return super().create_parser(protocol_name)

    return Factory()


def _binary_decoded(value: dict[str, Any]) -> dict[str, Any]:
    """An AttributeValue as sent, its binary values (at any depth) as bytes."""
    if "B" in value:
        return {"B": base64.b64decode(value["B"])}
    if "BS" in value:
        return {"BS": [base64.b64decode(member) for member in value["BS"]]}
    if "M" in value:
        nested = value["M"]
        for name, attribute in nested.items():
            nested[name] = _binary_decoded(attribute)
    elif "L" in value:
        value["L"] = [_binary_decoded(attribute) for attribute in value["L"]]
    return value


def reset_clients() -> None:
    """Forget every client (tests switch between moto mocks and endpoints)."""
    with _lock:
        _clients.clear()
