"""The AWS error codes of botocore's ClientError, read in one place.

A ClientError carries the service's answer in `error.response`:
`{"Error": {"Code": ..., "Message": ...}, "CancellationReasons": [...]}`. Anything else
(a network error, a programming error) has no code: the helpers answer None or nothing.
"""

from __future__ import annotations

from typing import Any


def _response(error: BaseException) -> dict[str, Any]:
    response = getattr(error, "response", None)
    return response if isinstance(response, dict) else {}


def error_code(error: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, None for anything else."""
    return _response(error).get("Error", {}).get("Code")


def describe(error: BaseException) -> str:
    """`Code: Message` of a botocore ClientError, for messages shown to users."""
    details = _response(error).get("Error", {})
    return f"{details.get('Code')}: {details.get('Message')}"


def cancellation_reasons(error: BaseException) -> list[dict[str, Any]]:
    """The CancellationReasons of a canceled DynamoDB transaction, one per operation."""
    return _response(error).get("CancellationReasons") or []


def cancellation_codes(error: BaseException) -> list[str | None]:
    """The code of each operation of a canceled DynamoDB transaction (None: not the cause)."""
    return [reason.get("Code") for reason in cancellation_reasons(error)]


def refused_item(error: BaseException) -> dict[str, Any]:
    """The item (DynamoDB JSON) a conditional write was refused on, as returned with
    ReturnValuesOnConditionCheckFailure="ALL_OLD"; {} when it carries none."""
    return _response(error).get("Item") or {}
