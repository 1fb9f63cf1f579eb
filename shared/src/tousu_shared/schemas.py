"""Base of every HTTP request and response schema, and the types bounded like the database.

``ApiModel`` refuses unknown fields (a misspelt field is an error, not silently dropped) and
any string holding a NUL character (Postgres cannot store one), so such input is a 422
naming the field before anything is written. ``Int64`` keeps integers inside Postgres'
``bigint``, so a 20-digit number is a 422 instead of a database error.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
NonNegativeInt64 = Annotated[int, Field(ge=0, le=INT64_MAX)]


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_nul(item) for item in value)
    return False


M = TypeVar("M", bound=BaseModel)


def from_attributes(model: type[M], *sources: object, **fields: Any) -> M:
    """A response body whose fields are read off domain objects: each field not given in
    ``fields`` comes from the first of ``sources`` with an attribute of its name.

    So a read model states only what is not a copy (renamed, converted or computed). A field
    that neither ``fields`` nor any source supplies is an ``AttributeError``, never a silent
    default.
    """
    values = dict(fields)
    for name in model.model_fields:
        if name in values:
            continue
        source = next((s for s in sources if hasattr(s, name)), None)
        if source is None:
            raise AttributeError(f"{model.__name__}.{name}: no source has it")
        values[name] = getattr(source, name)
    return model(**values)


class ApiModel(BaseModel):
    """A request or response body: unknown fields refused, no NUL in any string."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _holds_nul(value):
            raise ValueError("must not contain a NUL character")
        return value


class ErrorBody(BaseModel):
    """Every 4xx body: a machine-readable code, a message, and the field at fault if any."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(examples=["validation_failed"])
    message: str
    field: str | None = Field(default=None, examples=["body.description"])
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="one entry per invalid field (validation failures)"
    )


_ERROR_MEANINGS = {
    400: "Malformed request (e.g. a header that is not printable ASCII)",
    401: "Missing or invalid API key (see WWW-Authenticate)",
    403: "The key lacks the scope, or the department is not the caller's",
    404: "No such resource, or not visible to the caller",
    409: "Conflicts with the current state; the body lists what is allowed",
    412: "If-Match does not name the current version",
    413: "Body larger than allowed",
    415: "Unsupported media type",
    422: "Invalid input; the body names each field",
    429: "Too many failed authentications; see Retry-After",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": meaning}
    for status, meaning in _ERROR_MEANINGS.items()
}
