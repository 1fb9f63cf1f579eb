"""Errors every service maps to clear 4xx responses with a machine-readable body."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of the errors an API turns into a 4xx response."""

    status_code = 400
    code = "bad_request"
    # Response headers the error needs (WWW-Authenticate, Retry-After, ...).
    headers: dict[str, str] | None = None

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        body.update(self.details)
        return body


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="tousu"'}


class TooManyRequests(ServiceError):
    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.headers = {"Retry-After": str(retry_after)}


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class InvalidInput(ServiceError):
    status_code = 422
    code = "validation_failed"


class PreconditionFailed(ServiceError):
    status_code = 412
    code = "precondition_failed"
