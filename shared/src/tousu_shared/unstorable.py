"""A value the database cannot hold is the caller's error: a 422 naming where it came from.

Request schemas refuse such values first where they can (``ApiModel``: no NUL; ``Int64``:
within ``bigint``); this is the one rule behind them for every endpoint, so that a NUL
character, an integer past its column's range or any other value Postgres refuses (SQLSTATE
class 22, "data exception", or asyncpg failing to encode an argument) never becomes a 500.
The transaction it happened in has rolled back. The field is found by looking for the value
in the request: path, query, then the JSON body (which ``RequestEdge`` keeps for this).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson
from asyncpg.exceptions._base import DataError as ArgumentEncodingError
from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

BODY_KEY = "tousu.body"  # the request body as it streamed in, kept in the ASGI scope
_BOUNDS = {"int16": 2**15 - 1, "int32": 2**31 - 1, "int64": 2**63 - 1}
_RANGE = re.compile(r"out of (int16|int32|int64) range")


def refused_value(exc: DBAPIError) -> str | None:
    """What the database refused in the request, or None for any other failure."""
    cause = exc.orig.__cause__ if exc.orig is not None else None
    text = str(cause or exc.orig)
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(cause, "sqlstate", None)
    if not isinstance(cause, ArgumentEncodingError) and not (
        isinstance(sqlstate, str) and sqlstate.startswith("22")
    ):
        return None
    if match := _RANGE.search(text):
        return match.group(1)
    if "0x00" in text or "\\u0000" in text:
        return "nul"
    return "other"


_MESSAGES = {
    "int16": "an integer is past the range the store holds",
    "int32": "an integer is past the range the store holds",
    "int64": "an integer is past the range the store holds",
    "nul": "text holds a NUL character, which the store cannot hold",
    "other": "a value is not one the store can hold",
}


async def unstorable_value(request: Request, exc: Exception) -> JSONResponse:
    """The exception handler: a 422 for a refused value, the failure itself otherwise."""
    assert isinstance(exc, DBAPIError)
    kind = refused_value(exc)
    if kind is None:
        raise exc
    if kind in _BOUNDS:
        field = _first(request, lambda v: _past(v, _BOUNDS[kind]))
    elif kind == "nul":
        field = _first(request, lambda v: isinstance(v, str) and "\x00" in v)
    else:
        field = None
    return JSONResponse(
        {"error": "validation_failed", "message": _MESSAGES[kind], "field": field or "body"},
        status_code=422,
    )


def _past(value: Any, bound: int) -> bool:
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"[+-]?\d{1,5000}", value):
            return False
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > bound


def _first(request: Request, holds: Any) -> str | None:
    for field, value in _values(request):
        if holds(value):
            return field
    return None


def _values(request: Request) -> Iterator[tuple[str, Any]]:
    """Every value of the request with its field name, path first, then query, then body."""
    for name, value in request.path_params.items():
        yield f"path.{name}", value
    for name, value in request.query_params.multi_items():
        yield f"query.{name}", value
    raw = request.scope.get(BODY_KEY)
    if raw:
        try:
            body = orjson.loads(bytes(raw))
        except orjson.JSONDecodeError:
            return
        yield from _walk("body", body)


def _walk(at: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{at}.{key}", key
            yield from _walk(f"{at}.{key}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(f"{at}.{index}", item)
    else:
        yield at, value
