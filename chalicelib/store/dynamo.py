"""A thin layer over the DynamoDB client: typed (de)serialisation, conditional writes,
and paginated queries. Repositories in this package are the only users of DynamoDB."""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from chalicelib.aws import errors
from chalicelib.aws.clients import client
from chalicelib.core.settings import get_settings

_serializer = None
_CONFLICT_ATTEMPTS = 5
UNPROCESSED_TRIES = 8  # batch requests sent for what DynamoDB keeps leaving unprocessed


def _type_serializer():
    global _serializer
    if _serializer is None:
        from boto3.dynamodb.types import TypeSerializer

        _serializer = TypeSerializer()
    return _serializer


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    return value


def _number_safe(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _number_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_number_safe(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    ser = _type_serializer()
    return {k: ser.serialize(_number_safe(v)) for k, v in item.items() if v is not None}


def serialize_value(value: Any) -> dict[str, Any]:
    return _type_serializer().serialize(_number_safe(value))


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    """An item's attribute values (`{"S": "x"}`, as botocore or a Lambda stream event
    gives them) as plain Python: numbers as int or float, sets as sorted lists, binary as
    boto3's Binary."""
    return {k: _value(v) for k, v in item.items()}


def _value(attribute: dict[str, Any]) -> Any:
    # One pass, the common types first: boto3's TypeDeserializer, then _plain, took a
    # tenth of a list request's CPU.
    [(kind, value)] = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return _number(value)
    if kind == "M":
        return {k: _value(v) for k, v in value.items()}
    if kind == "L":
        return [_value(v) for v in value]
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "SS":
        return sorted(value)
    if kind == "NS":
        return sorted(_number(v) for v in value)
    if kind == "B":
        return _binary(value)
    if kind == "BS":
        return sorted((_binary(v) for v in value), key=lambda binary: binary.value)
    raise TypeError(f"Unknown DynamoDB attribute type {kind!r}")


def _binary(value: str | bytes) -> Any:
    """Bytes (botocore), or base64 text (a Lambda stream event)."""
    from boto3.dynamodb.types import Binary

    return Binary(value if isinstance(value, bytes) else base64.b64decode(value))


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return _plain(Decimal(text))


def _error_code(error: Exception) -> str | None:
    return errors.error_code(error)


def _cancellation_codes(error: Exception) -> list[str | None]:
    return errors.cancellation_codes(error)


def is_condition_failure(error: Exception) -> bool:
    """A write refused by its condition, or a transaction canceled by one of its conditions
    (not one canceled for another reason, such as a conflict with a concurrent one)."""
    code = _error_code(error)
    if code == "TransactionCanceledException":
        return "ConditionalCheckFailed" in _cancellation_codes(error)
    return code == "ConditionalCheckFailedException"


def _is_conflict(error: Exception) -> bool:
    """DynamoDB refused the write because a concurrent transaction held one of its items:
    nothing was written and the same write can be sent again. moto never does this."""
    code = _error_code(error)
    if code == "TransactionCanceledException":
        codes = _cancellation_codes(error)
        return "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes
    return code == "TransactionConflictException"


def _retrying_conflicts(call: Any, **kwargs: Any) -> Any:
    """`call(**kwargs)`, sent again after a short jittered pause while it meets a
    transaction conflict. botocore retries throttling, not conflicts."""
    for attempt in range(_CONFLICT_ATTEMPTS):
        try:
            return call(**kwargs)
        except Exception as error:
            if not _is_conflict(error) or attempt == _CONFLICT_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, 0.02 * 2**attempt))


def _throttled_tries(operation: str) -> Iterator[int]:
    """The tries of a batch request whose unprocessed part (what DynamoDB throttled) is
    sent again: a growing pause before each try after the first, and an error once
    UNPROCESSED_TRIES have left some unprocessed. The caller breaks out when all is done."""
    for tried in range(UNPROCESSED_TRIES):
        if tried:
            time.sleep(min(0.05 * 2**tried, 2.0))
        yield tried
    raise RuntimeError(f"{operation}: still unprocessed after {UNPROCESSED_TRIES} tries")


def get_together(reads: Sequence[tuple[Table, dict[str, Any]]]) -> list[dict[str, Any] | None]:
    """Items of one or more tables by key, read in one strongly consistent BatchGetItem
    (each key at most once): each read's item, or None, in the order asked."""
    request: dict[str, Any] = {}
    for table, key in reads:
        asked = request.setdefault(table.name, {"Keys": [], "ConsistentRead": True})
        asked["Keys"].append(serialize(key))
    found: dict[str, list[dict[str, Any]]] = {}
    for _ in _throttled_tries("BatchGetItem"):
        answer = client("dynamodb").batch_get_item(RequestItems=request)
        for name, items in answer.get("Responses", {}).items():
            found.setdefault(name, []).extend(deserialize(item) for item in items)
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            break
    return [
        next((i for i in found.get(table.name, []) if key.items() <= i.items()), None)
        for table, key in reads
    ]


class Table:
    """One DynamoDB table, by its logical name in infra/resources.json."""

    def __init__(self, logical_name: str) -> None:
        self.logical_name = logical_name

    @property
    def name(self) -> str:
        return get_settings().table(self.logical_name)

    @property
    def ddb(self) -> Any:
        return client("dynamodb")

    def get(self, key: dict[str, Any], consistent: bool = True) -> dict[str, Any] | None:
        found = self.ddb.get_item(
            TableName=self.name, Key=serialize(key), ConsistentRead=consistent
        )
        item = found.get("Item")
        return deserialize(item) if item else None

    def put(
        self,
        item: dict[str, Any],
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"TableName": self.name, "Item": serialize(item)}
        _add_expression(kwargs, condition, names, values)
        _retrying_conflicts(self.ddb.put_item, **kwargs)

    def update(
        self,
        key: dict[str, Any],
        update: str,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "Key": serialize(key),
            "UpdateExpression": update,
            "ReturnValues": "ALL_NEW",
        }
        _add_expression(kwargs, condition, names, values)
        return deserialize(_retrying_conflicts(self.ddb.update_item, **kwargs)["Attributes"])

    def delete(
        self,
        key: dict[str, Any],
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"TableName": self.name, "Key": serialize(key)}
        _add_expression(kwargs, condition, names, values)
        _retrying_conflicts(self.ddb.delete_item, **kwargs)

    def batch_write(
        self, puts: Sequence[dict[str, Any]] = (), deletes: Sequence[dict[str, Any]] = ()
    ) -> None:
        """Put `puts` (items) and delete `deletes` (keys), 25 per BatchWriteItem, sending
        again whatever DynamoDB leaves unprocessed (`_throttled_tries`). Not conditional
        and not atomic."""
        requests = [{"PutRequest": {"Item": serialize(item)}} for item in puts]
        requests += [{"DeleteRequest": {"Key": serialize(key)}} for key in deletes]
        for start in range(0, len(requests), 25):
            pending = {self.name: requests[start : start + 25]}
            for _ in _throttled_tries("BatchWriteItem"):
                pending = self.ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems")
                if not pending:
                    break

    def query_page(
        self,
        key_condition: str,
        values: dict[str, Any],
        limit: int,
        start_key: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
        filter_expression: str | None = None,
        index: str | None = None,
        newest_first: bool = True,
        key_of=None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Up to `limit` items after `start_key`, and the key to continue from (or None).

        DynamoDB applies `Limit` before the filter, so this reads on until it has `limit`
        matches; the continuation key is that of the last item returned, not DynamoDB's.
        `key_of(item)` gives an item's full key (table and index attributes).
        """
        items: list[dict[str, Any]] = []
        exclusive = start_key
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.name,
                "KeyConditionExpression": key_condition,
                "ExpressionAttributeValues": {k: serialize_value(v) for k, v in values.items()},
                "ScanIndexForward": not newest_first,
                "Limit": limit + 1 if filter_expression is None else max(limit * 2, 25),
            }
            if names:
                kwargs["ExpressionAttributeNames"] = names
            if filter_expression:
                kwargs["FilterExpression"] = filter_expression
            if index:
                kwargs["IndexName"] = index
            if exclusive:
                kwargs["ExclusiveStartKey"] = serialize(exclusive)
            page = self.ddb.query(**kwargs)
            for raw in page.get("Items", []):
                item = deserialize(raw)
                if len(items) == limit:
                    return items, key_of(items[-1])
                items.append(item)
            last = page.get("LastEvaluatedKey")
            if not last:
                return items, None
            exclusive = deserialize(last)

    def query_all(
        self,
        key_condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
        index: str | None = None,
        filter_expression: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": {k: serialize_value(v) for k, v in values.items()},
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if index:
            kwargs["IndexName"] = index
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        while True:
            page = self.ddb.query(**kwargs)
            for raw in page.get("Items", []):
                yield deserialize(raw)
            if not page.get("LastEvaluatedKey"):
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def transact(operations: list[dict[str, Any]]) -> None:
    """A TransactWriteItems of operations built with `put_op`/`update_op`/`delete_op`;
    one canceled by a concurrent transaction on the same items is sent again."""
    _retrying_conflicts(client("dynamodb").transact_write_items, TransactItems=operations)


def _expr(
    table: Table,
    key_or_item: dict[str, Any],
    key_field: str,
    condition: str | None,
    names: dict[str, str] | None,
    values: dict[str, Any] | None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": table.name, key_field: serialize(key_or_item)}
    _add_expression(op, condition, names, values)
    return op


def put_op(table: Table, item: dict[str, Any], condition=None, names=None, values=None) -> dict:
    return {"Put": _expr(table, item, "Item", condition, names, values)}


def delete_op(table: Table, key: dict[str, Any], condition=None, names=None, values=None) -> dict:
    return {"Delete": _expr(table, key, "Key", condition, names, values)}


def update_op(
    table: Table, key: dict[str, Any], update: str, condition=None, names=None, values=None
) -> dict:
    op = _expr(table, key, "Key", condition, names, values)
    op["UpdateExpression"] = update
    return {"Update": op}


def _add_expression(
    kwargs: dict[str, Any],
    condition: str | None,
    names: dict[str, str] | None,
    values: dict[str, Any] | None,
) -> None:
    if condition:
        kwargs["ConditionExpression"] = condition
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if values:
        kwargs["ExpressionAttributeValues"] = {k: serialize_value(v) for k, v in values.items()}
