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


# Answers that say the service is failing or busy, not that the request was wrong.
_UNAVAILABLE_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
    }
)
# botocore's transport failures (connect/read timeouts, refused or dropped connections):
# matched by name so that this module imports no botocore on the API's cold start.
_TRANSPORT_BASES = frozenset({"HTTPClientError", "ConnectionError"})


def unavailable(error: BaseException) -> bool:
    """Whether AWS failed to answer (a 5xx or throttling after botocore's retries, or no
    answer in time): the request may succeed later, and is answered 503 with Retry-After."""
    response = _response(error)
    if response:
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or error_code(error) in _UNAVAILABLE_CODES
    return any(
        cls.__module__ == "botocore.exceptions" and cls.__name__ in _TRANSPORT_BASES
        for cls in type(error).__mro__
    )
