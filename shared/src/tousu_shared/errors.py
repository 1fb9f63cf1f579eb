"""Errors every service maps to clear 4xx responses with a machine-readable body.

Each error names its status and code where it is declared::

    class LinkGone(ServiceError, status=410, code="link_expired"): ...
"""

from __future__ import annotations

from typing import Any


class PermanentFailure(Exception):
    """An event that can never succeed; the consumer dead-letters it without retries.

    Raised by event handlers (``tousu_shared.inbox`` re-exports it for them), including the
    platform's own credential handler, which ``tousu_shared.inbox`` cannot be imported by.
    """


class ServiceError(Exception):
    """Base of the errors an API turns into a 4xx response."""

    status_code = 400
    code = "bad_request"
    # Response headers the error needs (WWW-Authenticate, Retry-After, ...).
    headers: dict[str, str] | None = None

    def __init_subclass__(
        cls, *, status: int | None = None, code: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status_code = status
        if code is not None:
            cls.code = code

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


class NotFound(ServiceError, status=404, code="not_found"):
    """No such resource, or not one the caller may see."""


class Conflict(ServiceError, status=409, code="conflict"):
    """Refused by the resource's current state; details say what is allowed."""


class Forbidden(ServiceError, status=403, code="forbidden"):
    """The caller's key lacks the scope, or the department is not theirs."""


class Unauthorized(ServiceError, status=401, code="unauthorized"):
    """A missing or invalid API key."""

    headers = {"WWW-Authenticate": 'Bearer realm="tousu"'}


class TooManyRequests(ServiceError, status=429, code="too_many_requests"):
    """Too many failures; ``Retry-After`` says when to try again."""

    def __init__(self, message: str, *, retry_after: int, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.headers = {"Retry-After": str(retry_after)}


class PayloadTooLarge(ServiceError, status=413, code="payload_too_large"):
    """A body larger than the endpoint takes."""


class UnsupportedMediaType(ServiceError, status=415, code="unsupported_media_type"):
    """A body of a content type the endpoint does not read."""


class InvalidInput(ServiceError, status=422, code="validation_failed"):
    """Input the domain refuses; the field at fault is named."""


class PreconditionFailed(ServiceError, status=412, code="precondition_failed"):
    """If-Match does not name the current version."""
