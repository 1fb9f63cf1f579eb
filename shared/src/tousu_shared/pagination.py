"""Opaque keyset cursors: the sort key of the last item of a page, for every list API."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from tousu_shared.errors import InvalidInput


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:  # every sort key is a timestamptz; a naive one cannot compare
        raise ValueError("a cursor's time must have an offset")
    return value


def _text(text: str) -> str:
    if "\x00" in text:  # Postgres text cannot hold one
        raise ValueError("a cursor's text must not hold a NUL")
    return text


_PARSERS: dict[type, Callable[[str], Any]] = {
    datetime: _instant,
    uuid.UUID: uuid.UUID,
    str: _text,
}


def encode_cursor(*position: datetime | uuid.UUID | str) -> str:
    """A cursor pointing just after the item whose sort key is ``position``."""
    values = [v.isoformat() if isinstance(v, datetime) else str(v) for v in position]
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type) -> tuple[Any, ...]:
    """The sort key a cursor stands for; a forged or foreign one is a 422 naming ``cursor``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded))
        # Every value was written as a string; a forged one may be any JSON at all.
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError("wrong shape")
        if not all(isinstance(value, str) for value in values):
            raise ValueError("wrong types")
        return tuple(_PARSERS[kind](value) for kind, value in zip(types, values, strict=True))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidInput("the cursor is not one this API returned", field="cursor") from exc
