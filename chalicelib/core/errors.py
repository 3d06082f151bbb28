"""Domain errors. Raised anywhere; turned into the contract's error envelope in api/http.py."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 500
    code = "internal_error"
    default_message = "An internal error occurred"

    def __init__(
        self,
        message: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.details = details
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code, default_message = 400, "bad_request", "Malformed request"


class InvalidCursor(ApiError):
    status, code, default_message = 400, "invalid_cursor", "The cursor is not valid for this list"


class Unauthorized(ApiError):
    status, code, default_message = 401, "unauthorized", "A valid API key or token is required"


class Forbidden(ApiError):
    status, code, default_message = 403, "forbidden", "This credential lacks the required scope"

    def __init__(self, required_scope: str, message: str | None = None) -> None:
        super().__init__(
            message or f"This credential lacks the scope {required_scope}",
            {"required_scope": required_scope},
        )


class FeatureLimitReached(ApiError):
    status, code = 403, "feature_limit_reached"

    def __init__(self, feature: str, limit: int, used: int) -> None:
        super().__init__(
            f"The {feature} limit of your plan ({limit}) is reached",
            {"feature": feature, "limit": limit, "used": used},
        )


class NotFound(ApiError):
    status, code = 404, "not_found"

    def __init__(self, what: str = "Resource", detail: str | None = None) -> None:
        super().__init__(f"{what} not found" + (f": {detail}" if detail else ""))


class Conflict(ApiError):
    status, code, default_message = 409, "conflict", "The request conflicts with existing data"


class InvalidState(ApiError):
    status, code, default_message = 409, "invalid_state", "Not allowed in the current state"


class UploadIncomplete(ApiError):
    status, code, default_message = 409, "upload_incomplete", "The upload has not arrived yet"


class PayloadTooLarge(ApiError):
    status, code, default_message = 413, "payload_too_large", "The request body is too large"


class ValidationFailed(ApiError):
    status, code, default_message = 422, "validation_failed", "The request is not valid"

    def __init__(self, fields: dict[str, list[str]], message: str | None = None) -> None:
        super().__init__(message, {"fields": fields})


class ChecksumMismatch(ApiError):
    status, code = 422, "checksum_mismatch"

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(
            "The uploaded object's SHA-256 does not match the one given for the upload",
            {"expected": expected, "actual": actual},
        )


class RateLimited(ApiError):
    status, code, default_message = 429, "rate_limited", "Too many requests"


class QuotaExceeded(ApiError):
    status, code = 429, "quota_exceeded"

    def __init__(self, feature: str, limit: int, used: int, retry_after: int) -> None:
        super().__init__(
            f"The {feature} quota of your plan ({limit}) is used up for this period",
            {"feature": feature, "limit": limit, "used": used},
            {"Retry-After": str(retry_after)},
        )


class ServiceUnavailable(ApiError):
    status, code, default_message = 503, "service_unavailable", "A dependency is unavailable"

    def __init__(self, message: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})


class IdempotencyKeyInUse(ApiError):
    status, code = 409, "idempotency_key_in_use"
    default_message = "A request with this Idempotency-Key is still being processed; retry soon"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class IdempotencyKeyReused(ApiError):
    status, code = 422, "idempotency_key_reused"
    default_message = (
        "This Idempotency-Key was already used for a request with another method, path or body"
    )


class BuildQueueFull(ApiError):
    status, code, default_message = 503, "build_queue_full", "The build queue is full; retry later"

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)})


class CannotRetry(ApiError):
    status, code, default_message = 400, "cannot_retry", "This delivery succeeded: nothing to retry"
