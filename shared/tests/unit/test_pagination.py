"""Keyset cursors shared by every list API."""

import uuid
from datetime import UTC, datetime

import pytest
from tousu_shared.errors import InvalidInput
from tousu_shared.pagination import decode_cursor, encode_cursor


def test_a_cursor_round_trips_its_sort_key():
    at, item = datetime(2026, 11, 22, 8, 30, tzinfo=UTC), uuid.uuid4()
    cursor = encode_cursor(at, item, "resolve")
    assert decode_cursor(cursor, datetime, uuid.UUID, str) == (at, item, "resolve")


@pytest.mark.parametrize("cursor", ["nope", encode_cursor("x"), encode_cursor("a", "b", "c")])
def test_a_forged_or_foreign_cursor_is_a_422_naming_the_field(cursor):
    with pytest.raises(InvalidInput) as error:
        decode_cursor(cursor, datetime, uuid.UUID)
    assert error.value.field == "cursor"
